# The example's single-binary image, built and made runnable with podman
# (no Docker engine needed). Sourced by scripts/image and scripts/test after
# scripts/lib/servers.sh (for `say`).
#
# prepare_image: build the static binary, the `FROM scratch` image, and find
# the podman settings this machine needs to run it; exports
# STOWAGE_TEST_IMAGE, STOWAGE_TEST_PODMAN_ARGS and, when needed,
# CONTAINERS_CONF. On failure it returns 1 with the reason in $image_error.

image_tag=localhost/stowage-todo:test
image_error=""

# podman and runc, installed with apt-get when missing and this runs as root.
ensure_podman() {
    local missing=()
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || command -v crun >/dev/null || missing+=(runc)
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        image_error="${missing[*]} not installed, and this script cannot install it (needs root and apt-get): apt-get install podman runc"
        return 1
    fi
    say "installing ${missing[*]} (apt-get)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc </dev/null >&2; }; then
        image_error="apt-get install podman runc failed"
        return 1
    fi
}

# The example's binary, linked statically against glibc (the musl target
# cannot be downloaded here): only the final link differs from the debug
# build, so every dependency is the workspace's own.
build_static_binary() {
    local context=$1
    say "building the example's static binary"
    cargo rustc --quiet -p todo --bin todo -- -C target-feature=+crt-static
    rm -rf "$context"
    mkdir -p "$context/data"
    cp target/debug/todo "$context/todo"
}

# The settings `podman run` needs here, tried from none up: a
# containers.conf without default ulimits (a container may not raise
# RLIMIT_NOFILE on some hosts), then runc instead of crun (crun refuses
# cgroups in hybrid mode).
find_run_settings() {
    local conf=$1 args
    printf '[containers]\ndefault_ulimits = []\n' >"$conf"
    local tried=""
    for settings in "none" "conf" "conf runc"; do
        args=()
        [[ $settings == *runc* ]] && args+=(--runtime runc)
        if [[ $settings == conf* ]]; then export CONTAINERS_CONF=$conf; else unset CONTAINERS_CONF; fi
        if out=$(podman "${args[@]}" run --rm --network host "$image_tag" --version 2>&1); then
            export STOWAGE_TEST_PODMAN_ARGS="${args[*]}"
            say "podman runs the image (settings: $settings): $out"
            return 0
        fi
        tried+="
    with settings '$settings': $(tail -n 1 <<<"$out")"
    done
    unset CONTAINERS_CONF
    image_error="podman cannot run a container here:$tried"
    return 1
}

prepare_image() {
    local work=target/image
    ensure_podman || return 1
    build_static_binary "$work/context" || { image_error="the static build failed"; return 1; }
    say "building $image_tag with podman (FROM scratch, the binary built above)"
    # The previous build's image goes, rather than staying as a dangling one.
    podman rmi --force "$image_tag" >/dev/null 2>&1 || true
    if ! podman build --quiet -f examples/todo/Dockerfile --build-arg DIST=prebuilt \
        -t "$image_tag" "$work/context" >/dev/null; then
        image_error="podman build of examples/todo/Dockerfile failed"
        return 1
    fi
    find_run_settings "$PWD/$work/containers.conf" || return 1
    export STOWAGE_TEST_IMAGE=$image_tag
}
