//go:build !linux

package mesos

import "errors"

func newCgroupContainer(string, string) (container, error) { return nil, errors.ErrUnsupported }
