# shellcheck shell=bash
# Shared by up.sh, down.sh and smoke.sh: the two-node dev cluster's names.
# shellcheck source=../env/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../env/lib.sh"

UP_RUN=$RUN_DIR/up
UP_STATE=$STATE_DIR/up
UP_BRIDGE=k8sm-br0
# A test subnet with no route out of the machine (override K8SM_UP_SUBNET,
# the first three octets).
UP_SUBNET=${K8SM_UP_SUBNET:-10.213.0}
UP_GW=$UP_SUBNET.1
UP_NODES="k8sm-node1 k8sm-node2"
UP_CGROUP_ROOT=k8sm-up
UP_MASTER=$UP_GW:5050
KUBECTL=("$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN")

node_index() { echo "${1#k8sm-node}"; }
node_ip() { echo "$UP_SUBNET.1$(node_index "$1")"; }
node_docker() { echo "unix://$UP_RUN/$1/docker.sock"; }
