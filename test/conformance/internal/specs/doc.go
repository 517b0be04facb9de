// Package specs is the one place that knows the shape of the conformance
// harness's inputs: upstream's conformance.yaml (which specs exist and in
// which file), skip.txt (specs k8sm deliberately does not run, with a
// reason), plain spec lists such as smoke.txt, and how a list of spec names
// becomes a ginkgo --focus regexp. cmd/select and cmd/report share it.
//
// Everything here is pure: parsers take an io.Reader, and nothing reads
// flags, the environment or the file system.
package specs
