// Command pause is the process of k8sm's pod sandbox container: it holds the
// pod's network and IPC namespaces open while doing nothing else. As PID 1 of
// the sandbox it reaps every zombie re-parented to it, and it exits 0 on
// SIGINT or SIGTERM (Docker's stop signal) so a sandbox stops at once.
//
// It is built static (CGO_ENABLED=0) and imported by test/env/setup.sh as the
// k8sm.local/pause:test image; no registry is needed.
package main
