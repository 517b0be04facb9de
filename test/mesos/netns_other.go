//go:build !linux

package mesos

import "errors"

func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return errors.ErrUnsupported
}
