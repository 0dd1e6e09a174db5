#!/usr/bin/env bash
# Capture golden ipvsadm output from the real kernel.  Runs INSIDE a lab guest:
#
#   .venv/bin/python -m lab run --share .lab/golden -- bash lab/capture_golden.sh
#   cp .lab/golden/golden/* tests/unit/golden/
#
# For every scenario NAME, in a fresh network namespace with lo up:
#   NAME.cmds   the ipvsadm command lines applied, one per line (without "ipvsadm")
#   NAME.save   ipvsadm-save -n
#   NAME.Ln     ipvsadm -Ln
#   and for some: NAME.stats (-Ln --stats), NAME.rate (-Ln --rate),
#   NAME.thresholds (-Ln --thresholds), NAME.tun (-Ln --tun-info)
# REJECTED.md: the commands ipvsadm or the kernel refuse, with exit code and exact
# message, and what a save -> restore round trip loses.
set -euo pipefail

[ "${LVS_LAB_GUEST:-}" = 1 ] || { echo "capture_golden.sh: run me inside a lab guest (python -m lab run)" >&2; exit 2; }
out=${1:-${LVS_LAB_SHARE:?}/golden}
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
losses=$work/losses.md
rejected=$work/rejected.md
: >"$losses"
: >"$rejected"
pids=()

cleanup() {
    local pid ns
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ns in $(ip netns list | awk '/^[gr]-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

modprobe ip_vs

ns_new() { ip netns add "$1" && ip -n "$1" link set lo up; }
ns_del() { ip netns del "$1"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

capture() {  # capture NS NAME [stats rate thresholds tun ...]
    local ns=$1 name=$2 extra
    shift 2
    in_ns "$ns" ipvsadm-save -n >"$out/$name.save"
    in_ns "$ns" ipvsadm -Ln >"$out/$name.Ln"
    for extra in "$@"; do
        case $extra in
            stats) in_ns "$ns" ipvsadm -Ln --stats >"$out/$name.stats" ;;
            rate) in_ns "$ns" ipvsadm -Ln --rate >"$out/$name.rate" ;;
            thresholds) in_ns "$ns" ipvsadm -Ln --thresholds >"$out/$name.thresholds" ;;
            tun) in_ns "$ns" ipvsadm -Ln --tun-info >"$out/$name.tun" ;;
            *) echo "capture: unknown extra output $extra" >&2; exit 1 ;;
        esac
    done
}

roundtrip() {  # roundtrip NS NAME: restore NAME.save into a fresh namespace, note what differs
    local ns=$1 name=$2 view a b err
    local copy="r-$name"
    ns_new "$copy"
    if ! err=$(in_ns "$copy" ipvsadm -R <"$out/$name.save" 2>&1); then
        {
            echo "### $name: \`ipvsadm -R\` refuses the output of \`ipvsadm-save -n\`"
            echo
            echo '```'
            echo "$err"
            echo '```'
            echo
        } >>"$losses"
    fi
    for view in "-Sn" "-Ln" "-Ln --thresholds" "-Ln --tun-info" "-Ln --persistent-conn"; do
        # shellcheck disable=SC2086
        a=$(in_ns "$ns" ipvsadm $view)
        # shellcheck disable=SC2086
        b=$(in_ns "$copy" ipvsadm $view)
        if [ "$a" != "$b" ]; then
            {
                echo "### $name: \`ipvsadm $view\` differs after \`ipvsadm-save -n | ipvsadm -R\`"
                echo
                echo '```diff'
                diff -u --label "$name (as configured)" --label "$name (restored)" <(echo "$a") <(echo "$b") || true
                echo '```'
                echo
            } >>"$losses"
        fi
    done
    ns_del "$copy"
}

scenario() {  # scenario NAME [extras...] < ipvsadm command lines
    local name=$1 line err
    shift
    local ns="g-$name"
    ns_new "$ns"
    : >"$out/$name.cmds"
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        read -ra args <<<"$line"
        if ! err=$(in_ns "$ns" ipvsadm "${args[@]}" 2>&1 </dev/null); then
            echo "capture: scenario $name: 'ipvsadm $line' failed: $err" >&2
            exit 1
        fi
        printf '%s\n' "$line" >>"$out/$name.cmds"
    done
    capture "$ns" "$name" "$@"
    roundtrip "$ns" "$name"
    ns_del "$ns"
    echo "scenario $name: $(grep -c . "$out/$name.cmds" || true) commands"
}

reject() {  # reject "what" "setup;setup" "command" [lo-down]
    local what=$1 setup=$2 cmd=$3 lo=${4:-}
    local ns="g-reject" line rc msg
    ip netns add "$ns"
    [ "$lo" = lo-down ] || ip -n "$ns" link set lo up
    if [ -n "$setup" ]; then
        IFS=';' read -ra lines <<<"$setup"
        for line in "${lines[@]}"; do
            read -ra args <<<"$line"
            in_ns "$ns" ipvsadm "${args[@]}"
        done
    fi
    read -ra args <<<"$cmd"
    set +e
    msg=$(in_ns "$ns" ipvsadm "${args[@]}" 2>&1)
    rc=$?
    set -e
    {
        echo "### $what"
        echo
        echo '```'
        [ -z "$setup" ] || echo "$setup" | tr ';' '\n' | sed 's/^ */$ ipvsadm /'
        [ "$lo" != lo-down ] || echo "# (namespace with lo DOWN)"
        echo "\$ ipvsadm $cmd"
        [ -z "$msg" ] || echo "$msg"
        echo "# exit code $rc$([ "$rc" = 0 ] && echo ' - ACCEPTED, not refused')"
        if [ "$rc" = 0 ]; then
            echo "\$ ipvsadm -Sn    # what the kernel kept"
            in_ns "$ns" ipvsadm -Sn
        fi
        echo '```'
        echo
    } >>"$rejected"
    ip netns del "$ns"
}

# ----------------------------------------------------------------------------- scenarios

scenario empty </dev/null

scenario tcp_nat stats rate <<'EOF'
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 2
-a -t 10.0.0.1:80 -r 10.0.1.3:8080 -m -w 0
EOF

scenario udp_dr <<'EOF'
-A -u 10.0.0.2:53 -s wlc
-a -u 10.0.0.2:53 -r 10.0.1.1:53 -g -w 1
-a -u 10.0.0.2:53 -r 10.0.1.2 -g -w 65535
-a -u 10.0.0.2:53 -r 10.0.1.3:53 -w 7
EOF

scenario sctp <<'EOF'
-A --sctp-service 10.0.0.3:9 -s lc
-a --sctp-service 10.0.0.3:9 -r 10.0.1.1:9 -m
-a --sctp-service 10.0.0.3:9 -r 10.0.1.2:9 -g -w 3
-A --sctp-service [2001:db8::3]:2905 -s rr
-a --sctp-service [2001:db8::3]:2905 -r [2001:db8::31]:2905 -m
EOF

scenario fwmark_ipv4 <<'EOF'
-A -f 1 -s rr
-a -f 1 -r 10.0.1.1 -g
-a -f 1 -r 10.0.1.2:80 -m -w 4
-a -f 1 -r 10.0.1.3:0 -i
EOF

# ipvsadm-save prints fwmarks above 2^31-1 as negative numbers, which ipvsadm -R refuses.
scenario fwmark_max <<'EOF'
-A -f 2147483647 -s rr
-A -f 2147483648 -s rr
-A -f 4294967295 -s wlc
-a -f 4294967295 -r 10.0.1.1 -g
EOF

scenario fwmark_ipv6 <<'EOF'
-A -f 2 -6 -s wrr
-a -f 2 -6 -r [2001:db8::11]:80 -g -w 3
-a -f 2 -6 -r [2001:db8::12]:80 -m
-A -f 3 -6 -s sh -b sh-port -p 60 -M 64
EOF

scenario ipv6 <<'EOF'
-A -t [2001:db8::1]:80 -s rr
-a -t [2001:db8::1]:80 -r [2001:db8::11]:80 -m
-a -t [2001:db8::1]:80 -r [2001:db8::12]:8080 -m -w 5
-a -t [2001:db8::1]:80 -r [2001:db8::13]:80 -g
-A -u [2001:db8::1]:53 -s sh
-a -u [2001:db8::1]:53 -r [2001:db8::11]:53 -g
-A -t [2001:db8::1]:443 -s wlc -p 600 -M 64
-A -t [2001:db8:0:0:0:0:0:2]:80 -s lc
EOF

scenario schedulers <<'EOF'
-A -t 10.0.0.1:8001 -s rr
-A -t 10.0.0.1:8002 -s wrr
-A -t 10.0.0.1:8003 -s lc
-A -t 10.0.0.1:8004 -s wlc
-A -t 10.0.0.1:8005 -s lblc
-A -t 10.0.0.1:8006 -s lblcr
-A -t 10.0.0.1:8007 -s dh
-A -t 10.0.0.1:8008 -s sh
-A -t 10.0.0.1:8009 -s sed
-A -t 10.0.0.1:8010 -s nq
-A -t 10.0.0.1:8011 -s fo
-A -t 10.0.0.1:8012 -s ovf
-A -t 10.0.0.1:8013 -s mh
-A -t 10.0.0.1:8014
-a -t 10.0.0.1:8001 -r 10.0.1.1:80 -m
-a -t 10.0.0.1:8007 -r 10.0.1.1:80 -m
-a -t 10.0.0.1:8013 -r 10.0.1.1:80 -m -w 9
EOF

scenario sched_flags <<'EOF'
-A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port
-A -t 10.0.0.2:80 -s mh -b mh-fallback,mh-port
-A -t 10.0.0.3:80 -s sh -b sh-fallback
-A -t 10.0.0.4:80 -s mh -b mh-port
-A -t 10.0.0.5:80 -s rr -b flag-1
-A -t 10.0.0.6:80 -s wlc -b flag-1,flag-2,flag-3
-A -u 10.0.0.7:53 -s sh -b sh-port,sh-fallback
-A -f 9 -s mh -b mh-fallback
EOF

scenario persistence <<'EOF'
-A -t 10.0.0.1:80 -s rr -p
-A -t 10.0.0.2:80 -s rr -p 600
-A -t 10.0.0.3:0 -s lc -p 300 -M 255.255.255.0
-A -t 10.0.0.4:443 -s wlc -p 1 -M 255.255.255.255
-A -t [2001:db8::1]:443 -s wlc -p 600 -M 64
-A -t [2001:db8::2]:443 -s wlc -p 60
-A -f 3 -s rr -p 120
-a -t 10.0.0.3:0 -r 10.0.1.1 -g
EOF

scenario udp_sip_ops <<'EOF'
-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip
-A -u 10.0.0.2:5060 -s rr -o
-A -u 10.0.0.3:5060 -s rr -p 60 --pe sip -o
-A -f 4 -s rr -o
-A -u [2001:db8::5]:5060 -s sh -o -p 30 --pe sip
-a -u 10.0.0.1:5060 -r 10.0.1.1:5060 -m
EOF

scenario tunnels tun thresholds <<'EOF'
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -i --tun-type ipip
-a -t 10.0.0.1:80 -r 10.0.1.3:80 -i --tun-type gue --tun-port 6080 --tun-nocsum
-a -t 10.0.0.1:80 -r 10.0.1.4:80 -i --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.0.0.1:80 -r 10.0.1.5:80 -i --tun-type gue --tun-port 6081 --tun-remcsum
-a -t 10.0.0.1:80 -r 10.0.1.6:80 -i --tun-type gre --tun-csum
-a -t 10.0.0.1:80 -r 10.0.1.7:80 -i --tun-type gre --tun-nocsum
-a -t 10.0.0.1:80 -r 10.0.1.8:80 -i --tun-type gre
-a -t 10.0.0.1:80 -r 10.0.1.9:80 -i --tun-type gue --tun-port 6080
-A -t [2001:db8::1]:80 -s rr
-a -t [2001:db8::1]:80 -r [2001:db8::21]:80 -i --tun-type gue --tun-port 6080 --tun-csum
EOF

scenario tunnel_mixed_family tun <<'EOF'
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r [2001:db8::21]:80 -i
-A -t [2001:db8::1]:80 -s rr
-a -t [2001:db8::1]:80 -r 10.0.1.21:80 -i --tun-type gre
EOF

scenario weights_thresholds thresholds <<'EOF'
-A -t 10.0.0.1:80 -s wrr
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0
-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 1
-a -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w 65535
-a -t 10.0.0.1:80 -r 10.0.1.4:80 -m -w 10 -x 100 -y 50
-a -t 10.0.0.1:80 -r 10.0.1.5:80 -m -x 1000
-a -t 10.0.0.1:80 -r 10.0.1.6:80 -m -x 10 -y 10
-a -t 10.0.0.1:80 -r 10.0.1.7:80 -m -x 0 -y 0
-a -t 10.0.0.1:80 -r 10.0.1.8:80 -g -w 3 -x 65535 -y 1
EOF

scenario many_real_servers <<'EOF'
-A -u 10.0.0.9:514 -s lblcr
-a -u 10.0.0.9:514 -r 10.0.2.1:514 -m -w 1
-a -u 10.0.0.9:514 -r 10.0.2.2:514 -m -w 2
-a -u 10.0.0.9:514 -r 10.0.2.3:514 -m -w 3
-a -u 10.0.0.9:514 -r 10.0.2.4:514 -m -w 4
-a -u 10.0.0.9:514 -r 10.0.2.5:514 -m -w 5
-a -u 10.0.0.9:514 -r 10.0.2.6:514 -m -w 6
-a -u 10.0.0.9:514 -r 10.0.2.7:514 -m -w 7
-a -u 10.0.0.9:514 -r 10.0.2.8:514 -m -w 8
-a -u 10.0.0.9:514 -r 10.0.2.9:514 -m -w 9
-a -u 10.0.0.9:514 -r 10.0.2.10:514 -m -w 10
-a -u 10.0.0.9:514 -r 10.0.2.11:514 -m -w 11
-a -u 10.0.0.9:514 -r 10.0.2.12:514 -m -w 12
EOF

big_table() {
    local i j proto sched
    local scheds=(rr wrr lc wlc sh mh)
    for i in $(seq 1 20); do
        proto=$([ $((i % 3)) = 0 ] && echo u || echo t)
        sched=${scheds[$((i % ${#scheds[@]}))]}
        echo "-A -$proto 10.1.$i.1:$((1000 + i)) -s $sched"
        for j in 1 2 3; do
            echo "-a -$proto 10.1.$i.1:$((1000 + i)) -r 10.2.$i.$j:$((2000 + i)) -m -w $j"
        done
    done
}
big_table | scenario big_table stats rate

# A NAT service that carried real traffic: non-zero counters, connections and rates.
stats_traffic() {
    local name=stats_traffic ns=g-stats_traffic cli=g-stats-cli rs=g-stats-rs i
    ns_new "$ns"
    ns_new "$cli"
    ns_new "$rs"
    ip link add c0 netns "$cli" type veth peer name d0 netns "$ns"
    ip link add r0 netns "$rs" type veth peer name d1 netns "$ns"
    ip -n "$cli" addr add 10.9.0.10/24 dev c0
    ip -n "$cli" link set c0 up
    ip -n "$cli" route add default via 10.9.0.1
    ip -n "$ns" addr add 10.9.0.1/24 dev d0
    ip -n "$ns" addr add 10.9.1.1/24 dev d1
    ip -n "$ns" link set d0 up
    ip -n "$ns" link set d1 up
    in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$rs" addr add 10.9.1.11/24 dev r0
    ip -n "$rs" addr add 10.9.1.12/24 dev r0
    ip -n "$rs" link set r0 up
    ip -n "$rs" route add default via 10.9.1.1
    for i in 11 12; do
        in_ns "$rs" python3 -m http.server --bind "10.9.1.$i" 80 >/dev/null 2>&1 &
        pids+=($!)
    done
    for i in 11 12; do  # bounded wait until both listen
        for _ in $(seq 1 50); do
            in_ns "$rs" curl -s -o /dev/null --max-time 1 "http://10.9.1.$i/" && break
            sleep 0.2
        done
    done
    cat >"$work/$name.cmds" <<'EOF'
-A -t 10.9.0.1:80 -s rr
-a -t 10.9.0.1:80 -r 10.9.1.11:80 -m
-a -t 10.9.0.1:80 -r 10.9.1.12:80 -m -w 2
-A -u 10.9.0.1:53 -s rr
-a -u 10.9.0.1:53 -r 10.9.1.11:53 -m
EOF
    while IFS= read -r line; do
        read -ra args <<<"$line"
        in_ns "$ns" ipvsadm "${args[@]}"
    done <"$work/$name.cmds"
    cp "$work/$name.cmds" "$out/$name.cmds"
    for i in $(seq 1 12); do
        in_ns "$cli" curl -s -o /dev/null --max-time 2 http://10.9.0.1/
    done
    sleep 4  # the rate estimator runs every 2 s
    capture "$ns" "$name" stats rate
    for i in "${pids[@]}"; do kill "$i" 2>/dev/null || true; done
    pids=()
    ns_del "$cli"
    ns_del "$rs"
    ns_del "$ns"
    echo "scenario $name: traffic captured"
}
stats_traffic

# Every scheduler module this kernel has; twos is tried and recorded.
for s in rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos; do
    if modprobe -q "ip_vs_$s" 2>/dev/null; then echo "$s available"; else echo "$s MISSING"; fi
done >"$work/schedulers.txt"

# ----------------------------------------------------------------------------- refused commands

S="-A -t 10.0.0.1:80 -s rr"
reject "-y (lower threshold) without -x" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -y 10"
reject "-y above -x" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -x 10 -y 20"
reject "IPv6 real server without a port on an IPv6 fwmark service" "-A -f 2 -6 -s rr" "-a -f 2 -6 -r [2001:db8::11] -g"
reject "IPv6 real server without a port on an IPv6 fwmark service (bare address)" "-A -f 2 -6 -s rr" "-a -f 2 -6 -r 2001:db8::11 -g"
reject "one-packet scheduling on TCP" "" "-A -t 10.0.0.1:80 -s rr -o"
reject "one-packet scheduling on SCTP" "" "-A --sctp-service 10.0.0.1:80 -s rr -o"
reject "mixed address families with masquerading" "$S" "-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -m"
reject "mixed address families with direct routing" "$S" "-a -t 10.0.0.1:80 -r [2001:db8::1]:80 -g"
reject "IPv4 real server on an IPv6 service with masquerading" "-A -t [2001:db8::1]:80 -s rr" "-a -t [2001:db8::1]:80 -r 10.0.1.1:80 -m"
reject "gue without a port" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gue"
reject "gre with remote checksum" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gre --tun-remcsum"
reject "gre with a port" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gre --tun-port 6080"
reject "ipip with a port" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type ipip --tun-port 6080"
reject "ipip with a checksum option" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type ipip --tun-csum"
reject "csum together with remcsum" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum"
reject "nocsum together with csum" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gue --tun-port 6080 --tun-nocsum --tun-csum"
reject "tunnel options with masquerading" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m --tun-type gue --tun-port 6080"
reject "tunnel options with direct routing" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g --tun-type gre"
reject "tunnel options without a forwarding method (default is -g)" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 --tun-type gre"
reject "unknown scheduler" "" "-A -t 10.0.0.1:80 -s foo"
reject "twos scheduler (not built in this kernel)" "" "-A -t 10.0.0.1:80 -s twos"
reject "unknown tunnel type" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type vxlan"
reject "scheduler flag of another scheduler (sh-port on rr)" "" "-A -t 10.0.0.1:80 -s rr -b sh-port"
reject "scheduler flag of another scheduler (mh-port on sh)" "" "-A -t 10.0.0.1:80 -s sh -b mh-port"
reject "scheduler flag of another scheduler (sh-fallback on mh)" "" "-A -t 10.0.0.1:80 -s mh -b sh-fallback"
reject "unknown scheduler flag" "" "-A -t 10.0.0.1:80 -s sh -b sh-bogus"
reject "weight above 65535" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 65536"
reject "negative weight" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w -1"
reject "fwmark 0" "" "-A -f 0 -s rr"
reject "persistence engine sip on TCP" "" "-A -t 10.0.0.1:5060 -s rr -p 60 --pe sip"
reject "persistence engine sip without -p" "" "-A -u 10.0.0.1:5060 -s rr --pe sip"
reject "unknown persistence engine" "" "-A -u 10.0.0.1:5060 -s rr -p 60 --pe http"
reject "netmask without persistence" "" "-A -t 10.0.0.1:80 -s rr -M 255.255.255.0"
reject "IPv6 prefix length above 128" "" "-A -t [2001:db8::1]:80 -s rr -p 60 -M 129"
reject "dotted netmask on an IPv6 service" "" "-A -t [2001:db8::1]:80 -s rr -p 60 -M 255.255.255.0"
reject "prefix-length netmask on an IPv4 service" "" "-A -t 10.0.0.1:80 -s rr -p 60 -M 24"
reject "non-contiguous IPv4 netmask" "" "-A -t 10.0.0.1:80 -s rr -p 60 -M 255.0.255.0"
reject "persistence timeout 0" "" "-A -t 10.0.0.1:80 -s rr -p 0"
reject "TCP service without a port" "" "-A -t 10.0.0.1 -s rr"
reject "adding a service twice" "$S" "-A -t 10.0.0.1:80 -s wlc"
reject "adding a real server twice" "$S;-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 5"
reject "editing a missing service" "" "-E -t 10.0.0.1:80 -s wlc"
reject "editing a missing real server" "$S" "-e -t 10.0.0.1:80 -r 10.0.1.1:80 -m"
reject "deleting a missing service" "" "-D -t 10.0.0.1:80"
reject "deleting a missing real server" "$S" "-d -t 10.0.0.1:80 -r 10.0.1.1:80"
reject "real server on a missing service" "" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m"
reject "direct-routing real server on another port than the service" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g"
reject "real server while lo is down" "$S" "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m" lo-down
reject "changing the forwarding method in place" "$S;-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m" "-e -t 10.0.0.1:80 -r 10.0.1.1:80 -g"
reject "changing the scheduler in place" "$S" "-E -t 10.0.0.1:80 -s wlc"
reject "removing persistence in place" "-A -t 10.0.0.1:80 -s rr -p 60" "-E -t 10.0.0.1:80 -s rr"

# ----------------------------------------------------------------------------- REJECTED.md

{
    echo "# ipvsadm / kernel refusals and save losses (captured)"
    echo
    echo "Generated by \`lab/capture_golden.sh\` in a lab guest: ipvsadm $(ipvsadm --version 2>&1 | awk '{print $2}'),"
    echo "kernel $(uname -r) (Debian user-mode Linux).  Each block is a fresh namespace with lo up"
    echo "(unless noted): the setup commands, the command under test, its exact output and exit code."
    echo "Blocks marked ACCEPTED were not refused; \`ipvsadm -Sn\` then shows what the kernel kept."
    echo
    echo "Highlights of this capture (details below): \`-y\` without \`-x\` or above \`-x\` fails in the kernel"
    echo "with ERANGE; \`-w 65536\` is accepted and kept; \`-M 24\` on an IPv4 service is read as the"
    echo "netmask 0.0.0.24; a direct-routing real server's port is silently replaced by the service's;"
    echo "an unbracketed IPv6 real server on an IPv6 fwmark service becomes port 0 while the bracketed"
    echo "form without a port is refused by ipvsadm; adding a real server in a namespace whose lo is"
    echo "down fails with EINVAL; \`ipvsadm-save -n\` drops thresholds and prints fwmarks >= 2^31 as"
    echo "negative numbers that \`ipvsadm -R\` refuses, and ipvsadm's sorting of fwmarks overflows there, so"
    echo "the position of those lines in \`-Sn\` / \`-Ln\` output varies from one namespace to the next."
    echo
    echo "## Scheduler modules"
    echo
    echo '```'
    cat "$work/schedulers.txt"
    echo '```'
    echo
    echo "## Refused (or not) commands"
    echo
    cat "$rejected"
    echo "## What \`ipvsadm-save -n\` loses"
    echo
    echo "Every scenario above was restored with \`ipvsadm -R\` from its \`.save\` into a fresh namespace and"
    echo "compared with \`-Sn\`, \`-Ln\`, \`-Ln --thresholds\`, \`-Ln --tun-info\` and \`-Ln --persistent-conn\`."
    echo "Differences found in this capture:"
    echo
    if [ -s "$losses" ]; then
        grep '^### ' "$losses" | sed 's/^### /- /'
        echo
        echo "Details (as configured vs restored):"
        echo
        cat "$losses"
    else
        echo "(none)"
        echo
    fi
} >"$out/REJECTED.md"

echo "golden files written to $out"
