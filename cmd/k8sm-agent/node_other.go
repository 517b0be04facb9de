//go:build !linux

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/k8sm/k8sm/agent/executor"
	"github.com/k8sm/k8sm/agent/nodeapi"
)

func nodeStarter(*executorOptions, string, string, func() *nodeapi.Server, *slog.Logger) executor.StartNode {
	return func(context.Context, executor.Identity, executor.Report) (executor.Node, error) {
		return executor.Node{}, errors.ErrUnsupported
	}
}
