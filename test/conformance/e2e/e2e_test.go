package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
	conformancetestdata "k8s.io/kubernetes/test/conformance/testdata"
	commontest "k8s.io/kubernetes/test/e2e/common"
	"k8s.io/kubernetes/test/e2e/framework"
	"k8s.io/kubernetes/test/e2e/framework/config"
	e2enode "k8s.io/kubernetes/test/e2e/framework/node"
	e2epod "k8s.io/kubernetes/test/e2e/framework/pod"
	"k8s.io/kubernetes/test/e2e/framework/testfiles"
	e2etestingmanifests "k8s.io/kubernetes/test/e2e/testing-manifests"
	testfixtures "k8s.io/kubernetes/test/fixtures"
	utilnet "k8s.io/utils/net"

	// Logging flags (-v, --vmodule, ...) on the command line.
	_ "k8s.io/component-base/logs/testinit"

	// Define and freeze the feature and label constants.
	_ "k8s.io/kubernetes/test/e2e/feature"

	// The suites k8sm runs. Never drop "github.com/onsi/ginkgo/v2" above:
	// the ginkgo CLI looks for it to recognise a suite.
	_ "k8s.io/kubernetes/test/e2e/node"

	// Reconfigure the framework as upstream's e2e.test does: dump namespace
	// state on failure, gather metrics when asked, node debug helpers,
	// readable object formatting in failures.
	_ "k8s.io/kubernetes/test/e2e/framework/debug/init"
	_ "k8s.io/kubernetes/test/e2e/framework/metrics/init"
	_ "k8s.io/kubernetes/test/e2e/framework/node/init"
	_ "k8s.io/kubernetes/test/utils/format"
)

// namespaceCleanupTimeout bounds the wait for leftover namespaces with
// --clean-start (as upstream).
const namespaceCleanupTimeout = 15 * time.Minute

// handleFlags registers the framework's flags and parses the command line.
func handleFlags() {
	config.CopyFlags(config.Flags, flag.CommandLine)
	framework.RegisterCommonFlags(flag.CommandLine)
	framework.RegisterClusterFlags(flag.CommandLine)
	flag.Parse()
}

func TestMain(m *testing.M) {
	var versionFlag bool
	flag.CommandLine.BoolVar(&versionFlag, "version", false, "Displays version information.")
	handleFlags()

	if versionFlag {
		fmt.Printf("%s\n", version.Get())
		os.Exit(0)
	}
	if flag.CommandLine.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unknown additional command line arguments: %s\n", flag.CommandLine.Args())
		os.Exit(1)
	}

	// Embedded file sources: specs read manifests and fixtures through
	// testfiles, never from a checkout.
	testfiles.AddFileSource(e2etestingmanifests.GetE2ETestingManifestsFS())
	testfiles.AddFileSource(testfixtures.GetTestFixturesFS())
	testfiles.AddFileSource(conformancetestdata.GetConformanceTestdataFS())

	framework.AfterReadingAllFlags(&framework.TestContext)
	if framework.TestContext.RepoRoot != "" {
		testfiles.AddFileSource(testfiles.RootFileSource{Root: framework.TestContext.RepoRoot})
	}
	os.Exit(m.Run())
}

// TestE2E runs the specs (on every ginkgo process in parallel mode). It
// skips unless a cluster is named explicitly (--kubeconfig or --host) or the
// run is a dry run, so that "go test ./..." never aims the specs at whatever
// $KUBECONFIG points to.
func TestE2E(t *testing.T) {
	suiteConfig, reporterConfig := framework.CreateGinkgoConfig()
	if !flagSet("kubeconfig") && !flagSet("host") && !suiteConfig.DryRun {
		t.Skip("no --kubeconfig or --host: the specs need a cluster (run test/conformance/run.sh)")
	}
	// InitLogs turns contextual logging off; upstream turns it back on.
	logs.InitLogs()
	defer logs.FlushLogs()
	klog.EnableContextualLogging(true)

	gomega.RegisterFailHandler(framework.Fail)
	klog.Infof("Starting e2e run %q on Ginkgo node %d", framework.RunID, suiteConfig.ParallelProcess)
	ginkgo.RunSpecs(t, "k8sm node conformance (Kubernetes e2e suite)", suiteConfig, reporterConfig)
}

// flagSet reports whether the command line set the named flag.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

var _ = ginkgo.SynchronizedBeforeSuite(func(ctx context.Context) []byte {
	commontest.CurrentSuite = commontest.E2E
	setupSuite(ctx)
	return nil
}, func(ctx context.Context, _ []byte) {
	setupSuitePerGinkgoNode(ctx)
})

// setupSuite runs once, on ginkgo process 1, before any spec: upstream's
// setupSuite without the GCE image lookup, the daemon set wait, image
// pre-pulling and the node killer (none apply to k8sm).
func setupSuite(ctx context.Context) {
	c, err := framework.LoadClientset()
	framework.ExpectNoError(err, "load the client")

	if framework.TestContext.CleanStart {
		deleted, err := framework.DeleteNamespaces(ctx, c, nil, []string{
			metav1.NamespaceSystem, metav1.NamespaceDefault, metav1.NamespacePublic, "kube-node-lease",
		})
		if err != nil {
			framework.Failf("delete orphaned namespaces: %v", err)
		}
		if err := framework.WaitForNamespacesDeleted(ctx, c, deleted, namespaceCleanupTimeout); err != nil {
			framework.Failf("wait for orphaned namespaces %v to go: %v", deleted, err)
		}
	}

	timeouts := framework.NewTimeoutContext()
	framework.ExpectNoError(e2enode.WaitForAllNodesSchedulable(ctx, c, timeouts.NodeSchedulable))
	if framework.TestContext.CloudConfig.NumNodes == framework.DefaultNumNodes {
		nodes, err := e2enode.GetReadySchedulableNodes(ctx, c)
		framework.ExpectNoError(err)
		framework.TestContext.CloudConfig.NumNodes = len(nodes.Items)
	}
	if err := e2epod.WaitForAlmostAllPodsReady(ctx, c, metav1.NamespaceSystem, framework.TestContext.MinStartupPods,
		framework.TestContext.AllowedNotReadyNodes, timeouts.SystemPodsStartup); err != nil {
		framework.Failf("wait for the kube-system pods to be running and ready: %v", err)
	}

	framework.Logf("e2e test version: %s", version.Get().GitVersion)
	if v, err := c.Discovery().ServerVersion(); err != nil {
		framework.Logf("get the server version: %v", err)
	} else {
		framework.Logf("kube-apiserver version: %s", v.GitVersion)
	}
}

// setupSuitePerGinkgoNode runs on every ginkgo process: the cluster's IP
// family, from the kubernetes Service's cluster IP (as upstream).
func setupSuitePerGinkgoNode(ctx context.Context) {
	c, err := framework.LoadClientset()
	framework.ExpectNoError(err, "load the client")
	svc, err := c.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	framework.ExpectNoError(err, "get the kubernetes Service")
	framework.TestContext.IPFamily = "ipv4"
	if utilnet.IsIPv6String(svc.Spec.ClusterIP) {
		framework.TestContext.IPFamily = "ipv6"
	}
	framework.Logf("Cluster IP family: %s", framework.TestContext.IPFamily)
}
