// Package proxy turns Kubernetes Services and k8sm-managed EndpointSlices
// (label endpointslice.kubernetes.io/managed-by: k8sm-scheduler.k8sm.io,
// whose addresses are host IPs and whose ports are host ports) into
// iptables rules, so that ClusterIP:port reaches one of the pods'
// HostIP:HostPort endpoints.
//
// Contracts:
//   - Rules live only in chains prefixed "K8SM-" (at most 28 characters,
//     named by hashes), plus one jump each from nat PREROUTING, OUTPUT and
//     POSTROUTING and filter OUTPUT and FORWARD. Nothing else is touched.
//   - BuildState and Render are pure. The rules: nat K8SM-SERVICES
//     dispatches on the cluster IP's /24 to a K8SM-SVCS- chain that matches
//     each ip:port:protocol and jumps to the port's K8SM-SVC- chain, which
//     marks off-node traffic for masquerade and spreads new connections
//     over one K8SM-SEP- chain per usable endpoint (statistic random; ClientIP
//     affinity with recent), which marks hairpin traffic and DNATs;
//     K8SM-POSTROUTING masquerades marked packets (mark bit 13 by default);
//     filter K8SM-SERVICES REJECTs ports without usable endpoints. Usable:
//     ready endpoints, else serving terminating ones.
//   - A Proxy applies each sync with one iptables-restore --noflush. A sync
//     re-renders only the services that changed and writes only the chains
//     whose rules changed; a sync with nothing changed (the periodic one,
//     every SyncPeriod) runs no restore and only checks the canary and the
//     jumps from the built-in chains; a full resync, every FullSyncPeriod
//     (1h, as kube-proxy's), writes all.
//     The tables are read back (iptables-save) only when their content is
//     unknown: at the first sync, after a failed one, or when the canary
//     chain K8SM-PROXY-CANARY is gone (someone flushed them); K8SM- chains
//     found that the state does not have are deleted then. A failed restore
//     is logged with the lines it names and makes the next sync a full one.
//   - Run is a bounded-frequency loop: at most one sync per
//     MinSyncInterval, at least one per SyncPeriod. Every iptables command
//     runs on the goroutine that calls Sync or Run, so a caller whose
//     thread is in a network namespace programs that namespace.
//   - Cleanup removes every K8SM- chain and the jumps to them, whoever made
//     them, and nothing else (the executor on a clean exit; "k8sm-agent
//     proxy --cleanup" on a node).
//   - Exec works with iptables-nft and iptables-legacy (go-iptables for
//     single rules and the xtables lock, the matching -restore and -save).
//     Watch feeds a Proxy from lean informers. NodeIP reads the default
//     route's interface address with netlink.
//
// Imports: ports only (of this module).
package proxy
