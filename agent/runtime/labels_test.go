package runtime

import "testing"

func TestLabelsRoundTrip(t *testing.T) {
	o := Owner{"fw", "k8sm-abc", "agent-1", "c0ffee"}
	p := PodRef{"pod.uid-1", "uid-1", "web", "shop"}
	l := Labels(o, p, "httpd")
	go2, gp, gc, err := ParseLabels(l)
	if err != nil || go2 != o || gp != p || gc != "httpd" {
		t.Fatalf("ParseLabels(Labels(...)) = %+v %+v %q %v", go2, gp, gc, err)
	}
	for _, k := range []string{LabelExecutorID, LabelPodUID, LabelContainerID} {
		bad := Labels(o, p, "httpd")
		delete(bad, k)
		if _, _, _, err := ParseLabels(bad); err == nil {
			t.Errorf("missing %s accepted", k)
		}
		bad[k] = ""
		if _, _, _, err := ParseLabels(bad); err == nil {
			t.Errorf("empty %s accepted", k)
		}
	}
	if _, _, _, err := ParseLabels(map[string]string{"com.example": "x"}); err == nil {
		t.Error("foreign container accepted")
	}
}
