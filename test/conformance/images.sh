#!/usr/bin/env bash
# images.sh DOCKER_HOST_URL...: the container images the selected conformance
# specs use, under their upstream names (test/utils/image/manifest.go of
# k8s.io/kubernetes v1.35.8), imported into every given dockerd.
#
# There is no registry access: each image is a rootfs assembled here and
# loaded with "docker import" (as test/env/setup.sh builds the bed's images),
# from Debian's static busybox (every applet linked), the static binaries
# build.sh made (agnhost, nnp) and the repo's pause program. An image whose
# io.k8sm.test.hash label matches its rootfs and settings is left alone. An
# image that cannot be built is listed with the reason in
# _output/conformance/images-missing.txt, and the script goes on (the specs
# that need it then fail, visibly, in the report); a failure of the build
# machinery itself (docker, tar) stops it with an error.
#
#   registry.k8s.io/e2e-test-images/agnhost:2.59   agnhost + busybox, ENTRYPOINT /agnhost, CMD pause
#   registry.k8s.io/e2e-test-images/agnhost:2.55   the same rootfs (a stand-in: only
#                                                  "Pods should run through the lifecycle of
#                                                  Pods and PodStatus" uses it, to change image)
#   registry.k8s.io/e2e-test-images/busybox:1.37.0-1
#   registry.k8s.io/pause:3.10.1                   test/images/pause, USER 65535 as upstream
#   registry.k8s.io/e2e-test-images/nginx:1.14-4   STAND-IN: busybox httpd on :80 serving an
#                                                  nginx-like default page ("nginx" is a script)
#   registry.k8s.io/e2e-test-images/nonewprivs:1.3 setuid-root /usr/local/bin/nnp, CMD nnp
#   registry.k8s.io/e2e-test-images/nonroot:1.4    busybox, USER 1234
#
# Stand-ins inside agnhost (the upstream image is Alpine with packages): /bin/bash
# runs busybox sh, /usr/bin/curl runs busybox wget (GET only). Root needed.
set -euo pipefail
# shellcheck source=../env/lib.sh
source "$(dirname "$0")/../env/lib.sh"
log() { printf '[k8sm-conformance] %s\n' "$*" >&2; }
require_root

CONF_BIN=$BIN/conformance
OUT_DIR=$K8SM_ROOT/_output/conformance
MISSING=$OUT_DIR/images-missing.txt
KUBE_SRC=
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

E2E_REG=registry.k8s.io/e2e-test-images
AGNHOST=$E2E_REG/agnhost:2.59
AGNHOST_PREV=$E2E_REG/agnhost:2.55
BUSYBOX=$E2E_REG/busybox:1.37.0-1
PAUSE=registry.k8s.io/pause:3.10.1
NGINX=$E2E_REG/nginx:1.14-4
NONEWPRIVS=$E2E_REG/nonewprivs:1.3
NONROOT=$E2E_REG/nonroot:1.4

HOSTS=()
TMP=

missing() {
	log "WARNING: image $1 not built: $2"
	printf '%s\t%s\n' "$1" "$2" >>"$MISSING"
}

# busybox_rootfs DIR: Debian's static busybox with every applet linked in,
# and the users and groups the specs and images expect.
busybox_rootfs() {
	local d=$1
	busybox_tree "$d"
	mkdir -p "$d"/{sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,home,proc,sys,dev,var/www}
	cat >"$d/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
	cat >"$d/etc/group" <<'EOF'
root:x:0:
daemon:x:1:
www-data:x:33:
user-defined-in-image:x:1000:
group-defined-in-image:x:50000:user-defined-in-image
nogroup:x:65534:
EOF
	printf 'hosts: files dns\n' >"$d/etc/nsswitch.conf"
}

# image_tar NAME DIR: a reproducible tar of DIR (sorted, fixed times and
# owners, modes such as setuid kept).
image_tar() {
	tar -C "$2" -c --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -f "$TMP/$1.tar" .
}

# import_all NAME TARNAME CHANGE...: docker import the tar as NAME into every
# host whose copy does not carry the same hash label.
import_all() {
	local name=$1 tarname=$2
	shift 2
	local hash h
	hash=$( (sha256sum <"$TMP/$tarname.tar"; printf '%s\n' "$@") | sha256sum | cut -c1-16)
	for h in "${HOSTS[@]}"; do
		if image_hash_is "$h" "$name" "$hash"; then
			log "image $name current on $h"
			continue
		fi
		if ! import_labelled "$h" "$name" "$hash" "$TMP/$tarname.tar" "$@"; then
			missing "$name" "docker import into $h failed"
			continue
		fi
		log "image $name imported into $h"
	done
}

build_busybox() {
	busybox_rootfs "$TMP/busybox"
	image_tar busybox "$TMP/busybox"
	import_all "$BUSYBOX" busybox "ENV $PATH_ENV" 'CMD ["sh"]'
}

build_nonroot() {
	# Upstream: debian-base with USER 1234; here the busybox rootfs.
	import_all "$NONROOT" busybox "ENV $PATH_ENV" 'USER 1234' 'CMD ["sh"]'
}

build_agnhost() {
	if [ ! -x "$CONF_BIN/agnhost" ]; then
		missing "$AGNHOST" "no $CONF_BIN/agnhost (run test/conformance/build.sh)"
		missing "$AGNHOST_PREV" "no $CONF_BIN/agnhost (run test/conformance/build.sh)"
		return
	fi
	local d=$TMP/agnhost
	busybox_rootfs "$d"
	install -m 0755 "$CONF_BIN/agnhost" "$d/agnhost"
	ln -s agnhost "$d/agnhost-2"
	# porter serves TLS with the certificate the upstream image carries.
	install -m 0644 "$KUBE_SRC/test/images/agnhost/porter/localhost.crt" "$KUBE_SRC/test/images/agnhost/porter/localhost.key" "$d/"
	mkdir -p "$d/uploads" "$d/home/user-defined-in-image"
	chown 1000:1000 "$d/home/user-defined-in-image"
	# Alpine's bash and curl, which some specs' commands name: stand-ins.
	rm -f "$d/bin/bash"
	printf '#!/bin/sh\n# k8sm stand-in for bash: busybox sh.\nexec /bin/sh "$@"\n' >"$d/bin/bash"
	cat >"$d/usr/bin/curl" <<'EOF'
#!/bin/sh
# k8sm stand-in for curl: a GET through busybox wget. Options are ignored;
# the last argument that is not an option is the URL; -o FILE is honoured.
url= out=-
while [ $# -gt 0 ]; do
	case $1 in
	-o | --output) out=$2; shift ;;
	-H | --header | -X | --request | -d | --data | -w | --write-out | -m | --max-time | --connect-timeout | -u | --user) shift ;;
	-*) ;;
	*) url=$1 ;;
	esac
	shift
done
[ -n "$url" ] || { echo "curl (busybox stand-in): no URL" >&2; exit 2; }
exec wget -q -O "$out" "$url"
EOF
	chmod 0755 "$d/bin/bash" "$d/usr/bin/curl"
	image_tar agnhost "$d"
	local changes=("ENV $PATH_ENV" 'WORKDIR /' 'EXPOSE 80 8080 8081 9376 5000' 'ENTRYPOINT ["/agnhost"]' 'CMD ["pause"]')
	import_all "$AGNHOST" agnhost "${changes[@]}"
	import_all "$AGNHOST_PREV" agnhost "${changes[@]}"
}

build_pause_image() {
	local d=$TMP/pause
	mkdir -p "$d"
	if ! build_pause "$d"; then
		missing "$PAUSE" "go build ./test/images/pause failed"
		return
	fi
	image_tar pause "$d"
	import_all "$PAUSE" pause 'USER 65535:65535' 'ENTRYPOINT ["/pause"]'
}

build_nginx() {
	local d=$TMP/nginx
	busybox_rootfs "$d"
	mkdir -p "$d/usr/share/nginx/html" "$d/etc/nginx" "$d/var/log/nginx" "$d/var/cache/nginx"
	cat >"$d/usr/share/nginx/html/index.html" <<'EOF'
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. Further configuration is required.</p>
<p><em>Thank you for using nginx.</em></p>
<!-- k8sm stand-in for registry.k8s.io/e2e-test-images/nginx: busybox httpd -->
</body>
</html>
EOF
	cat >"$d/usr/sbin/nginx" <<'EOF'
#!/bin/sh
# k8sm stand-in for nginx: busybox httpd in the foreground on :80 serving
# /usr/share/nginx/html. nginx's arguments ("-g daemon off;") are ignored.
exec httpd -f -v -p 80 -h /usr/share/nginx/html
EOF
	chmod 0755 "$d/usr/sbin/nginx"
	image_tar nginx "$d"
	import_all "$NGINX" nginx "ENV $PATH_ENV" 'EXPOSE 80' 'CMD ["nginx", "-g", "daemon off;"]'
}

build_nonewprivs() {
	if [ ! -x "$CONF_BIN/nnp" ]; then
		missing "$NONEWPRIVS" "no $CONF_BIN/nnp (run test/conformance/build.sh)"
		return
	fi
	local d=$TMP/nonewprivs
	busybox_rootfs "$d"
	# setuid root as upstream ("RUN chmod +s"): without no_new_privs the
	# program runs with effective uid 0 whatever the container's user.
	install -o 0 -g 0 -m 4755 "$CONF_BIN/nnp" "$d/usr/local/bin/nnp"
	image_tar nonewprivs "$d"
	import_all "$NONEWPRIVS" nonewprivs "ENV $PATH_ENV" 'CMD ["nnp"]'
}

main() {
	[ $# -gt 0 ] || die "usage: images.sh DOCKER_HOST_URL..."
	HOSTS=("$@")
	local h
	for h in "${HOSTS[@]}"; do
		"$DOCKER" -H "$h" version >/dev/null 2>&1 || die "no dockerd answers at $h"
	done
	KUBE_SRC=$(cd "$K8SM_ROOT/test/conformance" && GOFLAGS="${GOFLAGS:-} -mod=mod" go list -m -f '{{.Dir}}' k8s.io/kubernetes)
	[ -d "$KUBE_SRC/test/images" ] || die "k8s.io/kubernetes not in the module cache (run test/conformance/build.sh)"
	mkdir -p "$OUT_DIR"
	rm -f "$MISSING"
	TMP=$(mktemp -d)
	trap 'rm -rf "$TMP"' EXIT
	local t0
	t0=$(date +%s)
	build_busybox
	build_nonroot
	build_agnhost
	build_pause_image
	build_nginx
	build_nonewprivs
	if [ -s "$MISSING" ]; then
		log "images: $(wc -l <"$MISSING") image(s) missing, see $MISSING"
	else
		log "images: all 7 present on ${#HOSTS[@]} dockerd(s) in $(($(date +%s) - t0))s"
	fi
}

main "$@"
