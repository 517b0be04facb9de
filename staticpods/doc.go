// Package staticpods reads static pod manifests from a directory, validates
// and defaults them through podspec, sums their resources, and packs them
// (gzipped, deterministic) for ExecutorInfo.data and unpacks them again.
//
// Contracts:
//   - Pack is deterministic: the same manifests give the same bytes, so the
//     ExecutorInfo (and the executor id derived from it) is stable.
//   - Unpack(Pack(pods)) returns the pods Pack was given; Unpack never
//     decompresses more than MaxUnpackedBytes.
//   - A bad manifest is reported with its file name, document index and the
//     bad field; files over MaxFileBytes are skipped, never half read; a
//     group- or world-writable directory is refused.
//   - A pod without a UID gets one derived from its file name, document
//     index and content: the same file gives the same pod on every node.
//   - Sum is the sum of the pods' podspec.TaskResources, in millicores and
//     bytes: the pod cgroups the executor makes for them fit it exactly.
//
// Imports: podspec only.
package staticpods
