package proxy

import (
	"context"
	"fmt"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// lean drops what the proxy never reads from cached objects (managed
// fields, last-applied annotations): the executor runs in 64 MiB.
func lean(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			delete(a, v1.LastAppliedConfigAnnotation)
		}
	}
	return obj, nil
}

// Watch feeds p from the API server through informers: every Service and
// the EndpointSlices labelled managed-by k8sm (ManagedBy). It returns once
// both caches are synced (so the first sync sees everything); the
// informers run until ctx ends.
func Watch(ctx context.Context, cs kubernetes.Interface, p *Proxy) error {
	svcs := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(lean))
	slices := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTransform(lean),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = discoveryv1.LabelManagedBy + "=" + ManagedBy
		}))
	si := svcs.Core().V1().Services().Informer()
	ei := slices.Discovery().V1().EndpointSlices().Informer()
	if _, err := si.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.SetService(o.(*v1.Service)) },
		UpdateFunc: func(_, o any) { p.SetService(o.(*v1.Service)) },
		DeleteFunc: func(o any) {
			if k, err := cache.DeletionHandlingObjectToName(o); err == nil {
				p.DeleteService(k.Namespace, k.Name)
			}
		},
	}); err != nil {
		return err
	}
	if _, err := ei.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { p.SetSlice(o.(*discoveryv1.EndpointSlice)) },
		UpdateFunc: func(_, o any) { p.SetSlice(o.(*discoveryv1.EndpointSlice)) },
		DeleteFunc: func(o any) {
			if k, err := cache.DeletionHandlingObjectToName(o); err == nil {
				p.DeleteSlice(k.Namespace, k.Name)
			}
		},
	}); err != nil {
		return err
	}
	svcs.Start(ctx.Done())
	slices.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), si.HasSynced, ei.HasSynced) {
		return fmt.Errorf("proxy: Services and EndpointSlices not synced: %w", ctx.Err())
	}
	return nil
}
