package scheduler

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// StateRef names the ConfigMap holding the framework's identity, and the
// Lease of leader election (same namespace and name).
type StateRef struct {
	Namespace, Name string
}

// FrameworkIDKey is the ConfigMap key of the Mesos framework id.
const FrameworkIDKey = "framework-id"

// Store keeps the framework id in a ConfigMap, so that the next leader
// re-subscribes as the same framework (DESIGN.md "Scheduler HA").
type Store struct {
	cs  kubernetes.Interface
	ref StateRef
}

// NewStore is the store at ref.
func NewStore(cs kubernetes.Interface, ref StateRef) *Store { return &Store{cs: cs, ref: ref} }

// Load returns the stored framework id, "" when there is none yet.
func (st *Store) Load(ctx context.Context) (string, error) {
	cm, err := st.cs.CoreV1().ConfigMaps(st.ref.Namespace).Get(ctx, st.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the framework id from ConfigMap %s/%s: %w", st.ref.Namespace, st.ref.Name, err)
	}
	return cm.Data[FrameworkIDKey], nil
}

// Save stores fid ("" forgets the framework).
func (st *Store) Save(ctx context.Context, fid string) error {
	cms := st.cs.CoreV1().ConfigMaps(st.ref.Namespace)
	cm, err := cms.Get(ctx, st.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cm = &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: st.ref.Namespace, Name: st.ref.Name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "k8sm-scheduler"}},
			Data: map[string]string{FrameworkIDKey: fid}}
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	} else if err == nil {
		if cm.Data[FrameworkIDKey] == fid {
			return nil
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[FrameworkIDKey] = fid
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("store the framework id in ConfigMap %s/%s: %w", st.ref.Namespace, st.ref.Name, err)
	}
	return nil
}
