//go:build !integration

package pods

import (
	"testing"

	"go.uber.org/goleak"
)

// Every unit test of the package ends with no goroutine of its own left.
// Not with the integration tests: the Docker and API clients they share
// keep idle connections (and their goroutines) for the next test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
