// Package staticpods reads static pod manifests from a directory, validates
// and defaults them through podspec, sums their resources, and packs them
// (gzipped, deterministic) for ExecutorInfo.data and unpacks them again.
//
// Imports: podspec only.
package staticpods
