package podspec

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxPodBytes bounds the encoded size of one pod: Mesos task data and static
// pod manifests larger than this are refused before parsing.
const MaxPodBytes = 1 << 20

// ErrTooLarge is returned (wrapped) for input over MaxPodBytes.
var ErrTooLarge = errors.New("pod larger than 1 MiB")

// DecodeError is returned for input that is not a single well-formed v1 Pod.
// Fields lists every offending field path (unknown or duplicate fields,
// wrong kind or apiVersion); it is empty for syntax errors.
type DecodeError struct {
	Fields []string
	Err    error
}

func (e *DecodeError) Error() string { return "decode pod: " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// Decode parses one Pod from JSON or YAML. It is strict: unknown and
// duplicate fields are errors that name the field path (for example
// `unknown field "spec.containers[0].imagePullPolice"`), kind must be "Pod"
// and apiVersion "v1", and input over MaxPodBytes is refused. Decode neither
// validates nor defaults the pod.
func Decode(data []byte) (*v1.Pod, error) {
	if len(data) > MaxPodBytes {
		return nil, fmt.Errorf("decode pod: %d bytes: %w", len(data), ErrTooLarge)
	}
	js := data
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		var err error
		if js, err = yaml.YAMLToJSONStrict(data); err != nil {
			return nil, &DecodeError{Err: fmt.Errorf("not YAML or JSON: %w", err)}
		}
	}
	if bad := hugeExponents(js); len(bad) > 0 {
		return nil, &DecodeError{Fields: bad, Err: fmt.Errorf("%s: quantity exponent out of range (at most 2 digits)", strings.Join(bad, ", "))}
	}
	pod := &v1.Pod{}
	strict, err := json.UnmarshalStrict(js, pod, json.DisallowDuplicateFields, json.DisallowUnknownFields)
	if err != nil {
		return nil, &DecodeError{Err: err}
	}
	var fields, msgs []string
	for _, e := range strict {
		msgs = append(msgs, e.Error())
		var fe json.FieldError
		if errors.As(e, &fe) {
			fields = append(fields, fe.FieldPath())
		}
	}
	if pod.Kind != "Pod" {
		fields = append(fields, "kind")
		msgs = append(msgs, fmt.Sprintf("kind: must be \"Pod\", got %q", pod.Kind))
	}
	if pod.APIVersion != "v1" {
		fields = append(fields, "apiVersion")
		msgs = append(msgs, fmt.Sprintf("apiVersion: must be \"v1\", got %q", pod.APIVersion))
	}
	if len(msgs) > 0 {
		return nil, &DecodeError{Fields: fields, Err: errors.New(strings.Join(msgs, "; "))}
	}
	return pod, nil
}

// quantityMaps are the keys whose values map resource names to quantities;
// quantityKeys hold one quantity.
var (
	quantityMaps = map[string]bool{"limits": true, "requests": true, "overhead": true, "allocatedResources": true}
	quantityKeys = map[string]bool{"sizeLimit": true}
)

// hugeExponents returns the paths of quantity fields whose decimal exponent
// has more than two digits. apimachinery's ParseQuantity takes seconds on
// values like "1e-9999999", so they are refused before the typed decode.
// Non-JSON input is left to the typed decode to report.
func hugeExponents(js []byte) []string {
	if !mayHaveLongExponent(js) {
		return nil // the common case: no second decode on the launch path
	}
	d := stdjson.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	var doc any
	if d.Decode(&doc) != nil {
		return nil
	}
	var bad []string
	var walk func(v any, path string, inQuantityMap bool)
	walk = func(v any, path string, inQuantityMap bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				if inQuantityMap || quantityKeys[k] {
					if s, ok := quantityText(e); ok && exponentTooLong(s) {
						bad = append(bad, p)
					}
					continue
				}
				walk(e, p, quantityMaps[k])
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s[%d]", path, i), false)
			}
		}
	}
	walk(doc, "", false)
	sort.Strings(bad)
	return bad
}

// mayHaveLongExponent reports whether js holds "e" or "E", an optional sign
// and three or more digits anywhere: without that, no value can have an
// exponent exponentTooLong refuses, so the generic decode can be skipped.
func mayHaveLongExponent(js []byte) bool {
	for i, b := range js {
		if b != 'e' && b != 'E' {
			continue
		}
		j := i + 1
		if j < len(js) && (js[j] == '+' || js[j] == '-') {
			j++
		}
		n := 0
		for j < len(js) && js[j] >= '0' && js[j] <= '9' {
			n, j = n+1, j+1
		}
		if n >= 3 {
			return true
		}
	}
	return false
}

func quantityText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case stdjson.Number:
		return string(x), true
	}
	return "", false
}

// exponentTooLong reports a decimal exponent ("e" or "E" then an optional
// sign and digits to the end) of more than two digits. Binary and SI
// suffixes such as "Ei" or "E" have no digits after the E.
func exponentTooLong(s string) bool {
	i := strings.LastIndexAny(s, "eE")
	if i < 0 {
		return false
	}
	exp := strings.TrimLeft(s[i+1:], "+-")
	if exp == "" || strings.Trim(exp, "0123456789") != "" {
		return false
	}
	return len(strings.TrimLeft(exp, "0")) > 2
}
