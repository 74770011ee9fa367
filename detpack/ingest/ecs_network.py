"""Elastic views of the Falco alert and Zeek network data sources (registered in `detpack.ingest.ecs`).

Each model re-implements, processor by processor, the ingest pipeline of the Elastic integration that
indexes the data source, plus what the Elastic Agent stream adds, in the style of `detpack.ingest.ecs`
(same helpers, same conventions: `@timestamp` is the agent's read time, which a recorded event does not
have, so the event's own time stands in for it; `event.ingested` is set at index time and left out).

falco_alerts -- Elastic `falco` integration, data stream `falco.falco_alerts` (logs), ingest pipeline
`elasticsearch/ingest_pipeline/default.yml` @19a0a918 (elastic/integrations), read in full:

* F1 Agent, `logfile` stream (`agent/stream/logfile.yml.hbs` @b050aafa): the line is `message`; `tags` holds
  `preserve_falco_fields` when "Preserve Falco fields" is on (default off, `manifest.yml` @a5a81fac). The
  view the engines search uses the defaults: the last processor then removes the whole `falco` object.
  `preserve_falco_fields` and `preserve_original_event` are parameters of `falco_document`.
* F2 `event.kind: alert`; `message` JSON-decoded into `falco`.
* F3 In `falco.output_fields`, the keys `container.image`, `fd.cip`, `fd.sip`, `fd.lip`, `fd.rip`,
  `proc.ppid`, `proc.pid`, `proc.sid`, `proc.vpgid` are dot-expanded and renamed to `container.image.name`,
  `client.ip`, `server.ip`, `source.ip`, `destination.ip`, `process.parent.pid`, `process.pid`,
  `process.session_leader.pid`, `process.group_leader.vpid`; then every other dotted key is expanded
  (`dot_expander` `*`): `proc.cmdline` becomes `proc: {cmdline}`. An expansion through a path that holds a
  value (not an object) fails the pipeline.
* F4 `event.category` from `evt.category` and `event.type` from `evt.type` (the pipeline's two scripts,
  tables below), `event.outcome` from `evt.res`/`evt.failed`; `threat.technique.id` = the first `T\\d{4}`
  found in `tags` (`T1059.004` gives `T1059`); `event.severity` 7..0 from `priority`; `rule.name` = `rule`;
  `event.sequence` = `evt.num`; `@timestamp` from `evt.time` (a number of nanoseconds, or a map holding
  `iso8601`/`rawtime`); `event.start` = `evt.time.iso8601`; `event.provider` = `source`;
  `observer.hostname` and `related.hosts` = `hostname`.
* F5 ECS copies: `process.executable/name/command_line/working_directory/args_count/vpid` and the parent's
  from `proc.*`; `process.user.id` (uid converted to a string) and `.name`; `process.group.*`;
  `container.id/name/image.name/runtime/security_context.privileged/image.hash.all`; `host.ip` = [container
  ip]; `file.path`/`file.type` only when `fd.type` is `file` or `directory`; `file.directory/name/inode`;
  `client/server/source/destination.ip` (converted to ip, failure ignored) with `.address`, `.port` from
  `fd.cport/sport/lport/rport`, `.domain` from `fd.*.name`; `orchestrator.namespace`,
  `orchestrator.resource.name/id/label/ip` from `k8s.*`. `process.pid`, `process.session_leader.pid` and
  `process.group_leader.vpid` copy from `proc.*` keys that F3 already renamed, so they are never set (as in
  Elastic's own expected documents); `orchestrator.type`/`resource.type` test a literal top-level key
  `falco.output_fields.k8s.pod.name` that never exists, so they are never set either.
* F6 `falco.container.mounts` (a literal dotted key) = the parsed `container.mounts`, or null.
* F7 `message`, `evt.arg.flags` and `proc.aname[2..7]` are removed; without `preserve_falco_fields` the whole
  `falco` object is removed. On failure: `error.message` appended, `event.kind: pipeline_error`.

zeek_conn -- Elastic `zeek` integration, data stream `zeek.connection`, ingest pipeline `default.yml`
@01dd5e02 (the copy in ../shared/reference-events/elastic-ingest-pipelines/zeek.connection/, read in full):

* Z1 Agent, `log` stream: the line is `message`, `tags: [zeek-connection]` (the stream's default tags).
* Z2 `message` -> `event.original`, JSON-decoded into `zeek.connection` (dropped without `ts`);
  `event.created` = the agent's `@timestamp` (the stand-in); `ecs.version` 8.10.0; `event.kind: event`;
  `event.category: [network]`.
* Z3 Renames: `duration` (-> `event.duration`, nanoseconds, `Math.round`), `id.orig_h/p` ->
  `source.address/port`, `id.resp_h/p` -> `destination.address/port`, `proto` -> `network.transport`,
  `service` -> `network.protocol`, `uid` -> `zeek.session_id` (and `event.id`), `orig_ip_bytes`/
  `resp_ip_bytes` -> `source/destination.bytes`, `orig_pkts`/`resp_pkts` -> `.packets`, `conn_state` ->
  `zeek.connection.state` (+ `state_message` and `event.type` from the pipeline's table),
  `orig_l2_addr`/`resp_l2_addr` -> `.mac`; for ICMP the ports become `zeek.connection.icmp.type/code`.
* Z4 `source.ip`/`destination.ip` copied from the addresses; `network.community_id` (Community ID v1, seed
  0); `@timestamp` from `ts` (UNIX seconds or ISO 8601, millisecond precision); `tags` += `local_orig`,
  `local_resp` when those fields are present (whatever their value); `related.ip`; `network.packets` and
  `network.bytes` as sums; `network.direction` from `local_orig`/`local_resp`.
* Z5 Removed: `zeek.connection.id`, `orig_bytes`, `resp_bytes`, `tunnel_parents`, `ts`; `event.original`
  unless `preserve_original_event`. Not modelled: the GeoIP and ASN lookups (no database here;
  `*.geo.*`, `*.as.*`), and the `third-party` sub-pipeline for events fetched from Splunk's REST API.

zeek_dns -- data stream `zeek.dns`, ingest pipeline `default.yml` @03803c7f (elastic/integrations), read in
full:

* D1 Agent, `log` stream: `message`, `tags: [forwarded, zeek-dns]` (the stream's default tags).
* D2 JSON-decoded into `zeek.dns`; `event.created` (stand-in), `event.kind: event`, `ecs.version` 8.17.0,
  `event.category: [network]`, `event.type: [connection, protocol, info]`, `network.protocol: dns`.
* D3 The tuple to `source.*`/`destination.*` (address, ip, port), `proto` -> `network.transport`, `uid` ->
  `zeek.session_id` and `event.id`; `dns.header_flags` (AA, TC, RD, RA when true); `dns.question.class`
  from `qclass`; `dns.type` `answer` when `rcode_name` is present, else `query`; `event.duration` =
  `rtt` * 1e9; `dns.answers` = [{data, ttl}] when `answers` and `TTLs` have the same length, and
  `dns.resolved_ip` = the answers that are IP addresses; `event.outcome: success`; `trans_id` converted to
  a string and copied to `dns.id`; `dns.question.type` = `qtype_name`; `dns.response_code` = `rcode_name`;
  `@timestamp` from `ts`; `network.community_id`; `related.ip`; `Z`, `auth`, `addl`, `id` removed.
  `event.original` is not removed by this pipeline.
* Not modelled: the `registered_domain` processor (`dns.question.name`, `.registered_domain`,
  `.subdomain`, `.top_level_domain`): it needs the Public Suffix List, and sets nothing for names without a
  known suffix (`_googlecast._tcp.local` in Elastic's own test); the pack's rules read `zeek.dns.query`,
  which every document has. GeoIP/ASN as for zeek_conn.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import ipaddress
import json
import re
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from detpack.ingest.ecs import (
    PRESERVE_ORIGINAL,
    Doc,
    PipelineFailure,
    _agent_fields,
    _append_unique,
    _convert,
    _copy,
    _exists,
    _format_millis,
    _get,
    _iso_to_millis,
    _remove,
    _rename,
    _set,
    _template_string,
    _to_ip,
)

PRESERVE_FALCO_FIELDS = "preserve_falco_fields"
FALCO_DATASET = "falco.falco_alerts"
ZEEK_CONN_DATASET = "zeek.connection"
ZEEK_DNS_DATASET = "zeek.dns"
ZEEK_CONN_TAGS = ("zeek-connection",)
ZEEK_DNS_TAGS = ("forwarded", "zeek-dns")
ZEEK_CONN_ECS_VERSION = "8.10.0"
ZEEK_DNS_ECS_VERSION = "8.17.0"

__all__ = [
    "PRESERVE_FALCO_FIELDS",
    "community_id",
    "falco_document",
    "falco_pipeline",
    "zeek_conn_document",
    "zeek_conn_pipeline",
    "zeek_dns_document",
    "zeek_dns_pipeline",
]

NETWORK_DATASOURCES = ("falco_alerts", "zeek_conn", "zeek_dns")


# --- shared ------------------------------------------------------------------------------------------------


def _fail(doc: Doc, message: str, *, preserve: bool) -> None:
    _set(doc, "event.kind", "pipeline_error")
    messages = _get(doc, "error.message")
    listed = messages if isinstance(messages, list) else ([] if messages is None else [messages])
    _set(doc, "error.message", [*listed, message])
    if preserve:
        _append_unique(doc, "tags", [PRESERVE_ORIGINAL])


def _dot_expand(doc: Doc, path: str, key: str) -> None:
    """dot_expander `field: key, path: path`: move the literal key `a.b.c` of the object at `path` to the
    nested path; a value (not an object) on the way fails; an existing target is appended to."""
    container = _get(doc, path)
    if not isinstance(container, dict) or key not in container:
        return
    target = f"{path}.{key}"
    if _exists(doc, target):
        value = container.pop(key)
        current = _get(doc, target)
        _set(doc, target, [*current, value] if isinstance(current, list) else [current, value])
        return
    parts = target.split(".")
    for end in range(1, len(parts)):
        partial = ".".join(parts[:end])
        if not _exists(doc, partial):
            break
        if not isinstance(_get(doc, partial), dict):
            raise PipelineFailure(
                f"cannot expand [{key}], because [{partial}] is not an object field, but a value field"
            )
    value = container.pop(key)
    _set(doc, target, value)


def _dot_expand_all(doc: Doc, path: str) -> None:
    container = _get(doc, path)
    if not isinstance(container, dict):
        return
    for key in list(container):
        if key.find(".") > 0:
            _dot_expand(doc, path, key)


def _unix_or_iso_to_millis(value: Any) -> str:
    """The date processor with formats [UNIX, ISO8601]: seconds since the epoch (with a fraction), else
    ISO 8601; output with millisecond precision (truncated)."""
    if isinstance(value, bool):
        raise PipelineFailure(f"unable to parse date [{value}]")
    try:
        seconds = Decimal(str(value))
    except InvalidOperation:
        return _iso_to_millis(str(value))
    millis = int((seconds * 1000).to_integral_value(rounding="ROUND_DOWN"))
    return _format_millis(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis))


_IANA = {"icmp": 1, "tcp": 6, "udp": 17, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132}
# ICMP types with a counterpart (request/reply): the counterpart stands in for the destination port.
_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {
    128: 129,
    129: 128,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}


def community_id(
    source_ip: str,
    source_port: int | None,
    destination_ip: str,
    destination_port: int | None,
    transport: str,
    icmp: tuple[int, int] | None = None,
) -> str | None:
    """Community ID v1 with seed 0 (the `community_id` ingest processor's defaults): SHA-1 over the seed, the
    lower endpoint's address, the other address, the protocol number, a zero byte and the two ports, base64,
    prefixed `1:`. For ICMP, `icmp` is (type, code): the type is the source port and the type's counterpart
    (echo request/reply, ...) the destination port, or, for one-way types, the code, and a one-way flow keeps
    its direction. None when the tuple is incomplete or the protocol is unknown."""
    proto = _IANA.get(transport.lower())
    if proto is None:
        return None
    try:
        src = ipaddress.ip_address(source_ip)
        dst = ipaddress.ip_address(destination_ip)
    except ValueError:
        return None
    if src.version != dst.version:
        return None
    one_way = False
    if proto in (1, 58):
        if icmp is None:
            return None
        pairs = _ICMP6_PAIRS if proto == 58 else _ICMP4_PAIRS
        sport, counterpart = icmp[0], pairs.get(icmp[0])
        one_way = counterpart is None
        dport = icmp[1] if counterpart is None else counterpart
    elif source_port is None or destination_port is None:
        return None
    else:
        sport, dport = source_port, destination_port
    src_bytes, dst_bytes = src.packed, dst.packed
    if not one_way and (src_bytes, sport) > (dst_bytes, dport):
        src_bytes, dst_bytes, sport, dport = dst_bytes, src_bytes, dport, sport
    data = struct.pack("!H", 0) + src_bytes + dst_bytes + struct.pack("!BB", proto, 0)
    data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _community_id(doc: Doc, icmp_prefix: str | None = None) -> None:
    transport = _get(doc, "network.transport")
    source_ip, destination_ip = _get(doc, "source.ip"), _get(doc, "destination.ip")
    if (
        not isinstance(transport, str)
        or not isinstance(source_ip, str)
        or not isinstance(destination_ip, str)
    ):
        return
    icmp = None
    if icmp_prefix is not None:
        kind, code = _integer(_get(doc, f"{icmp_prefix}.type")), _integer(_get(doc, f"{icmp_prefix}.code"))
        icmp = (kind, code) if kind is not None and code is not None else None
    found = community_id(
        source_ip,
        _integer(_get(doc, "source.port")),
        destination_ip,
        _integer(_get(doc, "destination.port")),
        transport,
        icmp,
    )
    if found is not None:
        _set(doc, "network.community_id", found)


# --- falco_alerts ------------------------------------------------------------------------------------------

_FALCO_EXPAND_FIRST: tuple[str, ...] = (
    "container.image",
    "fd.cip",
    "fd.sip",
    "fd.lip",
    "fd.rip",
    "proc.ppid",
    "proc.pid",
)
_FALCO_EXPAND_FIRST += ("proc.sid", "proc.vpgid")
_FALCO_RENAMES = (
    ("container.image", "container.image.name"),
    ("fd.cip", "client.ip"),
    ("fd.sip", "server.ip"),
    ("fd.lip", "source.ip"),
    ("fd.rip", "destination.ip"),
    ("proc.ppid", "process.parent.pid"),
    ("proc.pid", "process.pid"),
    ("proc.sid", "process.session_leader.pid"),
    ("proc.vpgid", "process.group_leader.vpid"),
)
_EVENT_CATEGORIES = frozenset(
    {
        *("api", "authentication", "configuration", "database", "driver", "email", "file", "host", "iam"),
        *("intrusion_detection", "library", "malware", "network", "package", "process", "registry"),
        *("session", "threat", "vulnerability", "web"),
    }
)
_CATEGORY_GROUPS = (
    (("time", "scheduler"), "configuration"),
    (("system", "memory", "sleep", "wait", "internal"), "host"),
    (("ipc", "net", "signal"), "network"),
    (("processing", "process", "io_read", "io_write", "io_other"), "process"),
    (("user",), "session"),
)
_EVENT_TYPES = frozenset(
    {
        *("access", "admin", "allowed", "change", "connection", "creation", "deletion", "denied", "end"),
        *("error", "group", "indicator", "info", "installation", "protocol", "start", "user"),
    }
)
# The pipeline's syscall -> event.type table, in its order (the first group that lists a syscall wins).
_TYPE_GROUPS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (name, frozenset(syscalls.split()))
    for name, syscalls in (
        (
            "access",
            "faccessat faccessat2 fsopen name_to_handle_at nfsservctl open open_by_handle_at open_tree "
            "openat openat2 pciconfig_read pidfd_open read readahead readdir readlink readlinkat readv "
            "s390_pci_mmio_read uselib vm86old vm86",
        ),
        ("admin", "bdflush membarrier ptrace reboot restart_syscall"),
        ("allowed", "fallocate finit_module"),
        (
            "change",
            "llseek sysctl acct adjtimex alarm arch_prctl bind bpf brk capset chdir chmod chown chown32 "
            "chroot clock_adjtime clock_nanosleep clock_settime close close_range epoll_ctl fchdir fchmod "
            "fchmodat fchown fchown32 fchownat fcntl fcntl64 flock free_hugepages fsetxattr fsconfig "
            "ftruncate ftruncate64 futimesat io_setup io_uring_setup ioctl ioperm iopl ioprio_set keyctl "
            "landlock_restrict_self lchown lchown32 madvise mbind memory_ordering migrate_pages mlock "
            "mlock2 mlockall mmap mmap2 modify_ldt move_mount move_pages mprotect mq_getsetattr mremap "
            "msgctl munlock munlockall munmap nanosleep nice old_adjtimex pause pciconfig_write personality "
            "perfctr perfmonctl pivot_root pkey_alloc pkey_free pkey_mprotect prctl prlimit64 "
            "process_madvise process_vm_writev pwrite64 pwritev pwritev2 quotactl quotactl_fd rename "
            "renameat renameat2 rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn "
            "rtas s390_pci_mmio_write s390_guarded_storage sched_setaffinity sched_setattr sched_setparam "
            "sched_setscheduler seccomp semctl semop semtimedop set_mempolicy set_robust_list "
            "set_thread_area set_tid_address set_tls set_domainname set_fsgid setfsgid32 setfsuid "
            "setfsuid32 setgid setgid32 sethae sethostimer setitimer setns setpgid setpgrp setpriority "
            "setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit "
            "setsid setsockopt settimeofday setuid setuid32 setup setxattr shmat shmctl shmdt sigaction "
            "sigaltstack subpage_prot swapcontext switch_endian sys_debug_setcontext timer_settime "
            "timerfd_settime truncate truncate64 umask utime utimesat utimes write writev xtensa",
        ),
        (
            "connection",
            "accept accept4 connect mq_timedreceive mq_timedsend msgrcv msgsnd pidfd_send_signal recv "
            "recvfrom recvmsg recvmmsg rt_sigqueueinfo rt_tgsigqueueinfo send sendfile sendfile64 sendmmsg "
            "sendmsg sendto signal signalfd signalfd4 socket socketcall socketpair syscall",
        ),
        (
            "creation",
            "add_key clone clone2 clone3 copy_file_range creat create_module dup dup2 dup3 epoll_create "
            "epoll_create1 eventfd eventfd2 fdatasync fork fsmount fsync init_module inotify_add_watch "
            "inotify_init inotify_init1 kexec_file_load kexec_load landlock_add_rule "
            "landlock_create_ruleset link linkat memfd_create memfd_secret mkdir mkdirat mknod mknodat "
            "mount mq_notify mq_open msync pidfd_getfd pipe pipe2 remap_file_pages splice spu_create "
            "symlink symlinkat sync sync_file_range sync_file_range2 syncfs tee timer_create timerfd_create "
            "vfork vmsplice",
        ),
        (
            "deletion",
            "cacheflush delete_module fremovexattr inotify_rm_watch io_destroy lremovexattr mq_unlink "
            "oldumount removexattr riscv_flush_icache rmdir spill timer_delete umount unlink unlinkat "
            "unshare",
        ),
        ("end", "exit exit_group io_cancel kill shutdown swapoff tgkill tkill vhangup"),
        ("group", "fanotify_init fanotify_mark setgroups setgroups32"),
        (
            "info",
            "alloc_hugepages capget clock_getres clock_gettime epoll_pwait epoll_pwait2 epoll_wait "
            "fadvise64 fadvise64_64 fgetxattr flistxattr fspick fstat fstat64 fstatat64 fstatfs fstatfs64 "
            "futex get_kernel_syms get_mempolicy get_robust_list get_thread_area get_tls getcpu getcwd "
            "getdents getdents64 getdomainname getdtablesize getegid getegid32 geteuid geteuid32 getgid "
            "getgid32 getgroups getgroups32 gethostname getitimer getpeername getpagesize getpgid getpgrp "
            "getpid getppid getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit "
            "getrusage getsid getsockname getsockopt gettid gettimeofday getuid getuid32 getunwind getxattr "
            "getxgid getxpid getxuid io_getevents io_pgetevents io_submit io_uring_register ioprio_get kcmp "
            "kern_features lgetxattr listen listxattr llistxattr lookup_dcookie lstat lstat64 mincore "
            "msgget newfstatat old_getrlimit old_fstat oldlstat oldolduname oldstat olduname or1k_atomic "
            "pciconfig_iobase poll ppoll pread64 preadv preadv2 process_vm_readv pselect6 query_module "
            "request_key rt_sigsuspend rt_sigtimedwait s390_runtime_instr s390_sthyi sched_get_affinity "
            "sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr sched_getparam "
            "sched_getscheduler sched_rr_get_interval sched_yield select semget sgetmask shmget sigpending "
            "sigprocmask sigreturn sigsuspend ssetmask stat stat64 statfs statfs64 statx stime sysfs "
            "sysinfo syslog sysmips time timer_getoverrun timer_gettime timerfd_gettime times ugetrlimit "
            "uname ustat wait wait4 waitid waitpid",
        ),
        ("installation", "utrap_install"),
        ("protocol", "ipc"),
        ("start", "execve execveat execv io_uring_enter perf_event_open spu_run swapon"),
        ("user", "userfaultfd usr26 usr32"),
    )
)
_SEVERITY = {
    "emergency": 7,
    "alert": 6,
    "critical": 5,
    "error": 4,
    "warning": 3,
    "notice": 2,
    "informational": 1,
    "debug": 0,
}
_TECHNIQUE = re.compile(r"T\d{4}")
_OF = "falco.output_fields"
# (ECS target, output field) pairs copied with `set copy_from ... ignore_empty_value`, in pipeline order.
_FALCO_PROCESS_COPIES = (
    ("process.executable", "proc.exepath"),
    ("process.parent.executable", "proc.pexepath"),
    ("process.name", "proc.name"),
    ("process.parent.name", "proc.pname"),
)
_FALCO_PROCESS_COPIES_2 = (
    ("process.command_line", "proc.cmdline"),
    ("process.parent.command_line", "proc.pcmdline"),
    ("process.args_count", "proc.cmdnargs"),
)
_FALCO_PROCESS_COPIES_3 = (
    ("process.working_directory", "proc.cwd"),
    ("process.pid", "proc.pid"),
    ("process.parent.pid", "process.parent.pid"),
    ("process.vpid", "proc.vpid"),
    ("process.parent.vpid", "proc.pvpid"),
    ("process.session_leader.pid", "proc.sid"),
    ("process.session_leader.name", "proc.sname"),
    ("process.session_leader.executable", "proc.sid.exepath"),
    ("process.group_leader.vpid", "proc.vpgid"),
    ("process.group_leader.name", "proc.vpgid.name"),
    ("process.group_leader.executable", "proc.vpgid.exepath"),
)
_FALCO_PROCESS_COPIES_4 = (
    ("process.parent.uptime", "proc.ppid.duration"),
    ("process.start", "proc.pid.ts"),
    ("process.parent.start", "proc.ppid.ts"),
    ("process.session_leader.same_as_process", "proc.is_sid_leader"),
    ("process.group_leader.same_as_process", "proc.is_vpgid_leader"),
    ("process.thread.capabilities.permitted", "thread.cap_permitted"),
    ("process.thread.capabilities.effective", "thread.cap_effective"),
    ("process.thread.id", "thread.tid"),
)
_FALCO_USER_COPIES = (
    ("process.user.id", "user.uid"),
    ("process.user.name", "user.name"),
    ("process.group.id", "group.gid"),
    ("process.group.name", "group.name"),
)
_FALCO_CONTAINER_COPIES = (
    ("container.id", "container.id"),
    ("container.name", "container.name"),
    ("container.image.name", "container.image.name"),
    ("container.runtime", "container.type"),
    ("container.security_context.privileged", "container.privileged"),
    ("container.image.hash.all", "container.image.digest"),
)
_FALCO_ENDPOINTS = ("client", "server", "source", "destination")
_FALCO_PORTS: tuple[tuple[str, str], ...] = (
    ("client.port", "fd.cport"),
    ("server.port", "fd.sport"),
    ("source.port", "fd.lport"),
)
_FALCO_PORTS += (("destination.port", "fd.rport"),)
_FALCO_DOMAINS: tuple[tuple[str, str], ...] = (
    ("client.domain", "fd.cip.name"),
    ("server.domain", "fd.sip.name"),
)
_FALCO_DOMAINS += (("source.domain", "fd.lip.name"), ("destination.domain", "fd.rip.name"))
_FALCO_K8S_COPIES = (
    ("orchestrator.namespace", "k8s.ns.name"),
    ("orchestrator.resource.name", "k8s.pod.name"),
    ("orchestrator.resource.id", "k8s.pod.uid"),
    ("orchestrator.resource.label", "k8s.pod.labels"),
)
_FALCO_REMOVED = ("evt.arg.flags", *(f"proc.aname[{n}]" for n in range(2, 8)))


def _mustache(value: Any) -> str:
    """A `{{field}}` template renders a string as it is and other values as JSON (HTML-escaped: the
    double-brace form escapes `&<>"'=`` and the pipeline uses it for file.path and host.ip)."""
    text = _template_string(value)
    for char, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        text = text.replace(char, escaped)
    return text.replace("'", "&#39;").replace("=", "&#61;").replace("`", "&#96;")


def _event_category(category: Any) -> list[Any]:
    if not isinstance(category, str):
        return ["process"]
    if category.lower() in _EVENT_CATEGORIES:
        return [category]
    for names, mapped in _CATEGORY_GROUPS:
        if category in names:
            return [mapped]
    return ["process"]


def _event_type(syscall: Any) -> list[Any]:
    if not isinstance(syscall, str):
        return ["info"]
    if syscall.lower() in _EVENT_TYPES:
        return [syscall]
    for mapped, names in _TYPE_GROUPS:
        if syscall in names:
            return [mapped]
    return ["info"]


def _falco_timestamp(time_field: Any) -> str | None:
    """The pipeline's @timestamp script: a number is nanoseconds, a string `yyyy-MM-dd'T'HH:mm:ss.SSSZ`."""
    if isinstance(time_field, Mapping):
        for key in ("iso8601", "rawtime"):
            if time_field.get(key) is not None:
                return _falco_timestamp(time_field[key])
        return None
    if isinstance(time_field, int) and not isinstance(time_field, bool):
        return _format_millis(
            datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=time_field // 1_000_000)
        )
    if isinstance(time_field, str):
        return _iso_to_millis(time_field)
    return None


def falco_pipeline(document: Mapping[str, Any]) -> Doc:
    """The falco.falco_alerts ingest pipeline (F2-F7) over one ingest document; returns the new document."""
    doc: Doc = copy.deepcopy(dict(document))
    try:
        _falco_steps(doc)
    except (PipelineFailure, ValueError, TypeError) as exc:
        _fail(doc, str(exc), preserve=False)
    return doc


def _falco_steps(doc: Doc) -> None:
    _set(doc, "event.kind", "alert")
    message = _get(doc, "message")
    try:
        parsed = json.loads(message) if isinstance(message, str) else None
    except json.JSONDecodeError as exc:
        raise PipelineFailure(f"Processor 'json' failed with message '{exc}'") from None
    if not isinstance(parsed, dict):
        raise PipelineFailure("Processor 'json' failed: the message is not a JSON object")
    _set(doc, "falco", parsed)
    if not isinstance(_get(doc, _OF), dict):
        raise PipelineFailure(f"field [{_OF}] not present as part of path [{_OF}.container.image]")
    for key in _FALCO_EXPAND_FIRST:
        _dot_expand(doc, _OF, key)
    for source, target in _FALCO_RENAMES:
        _rename(doc, f"{_OF}.{source}", f"{_OF}.{target}")
    _dot_expand_all(doc, _OF)

    _set(doc, "event.category", _event_category(_get(doc, f"{_OF}.evt.category")))
    _set(doc, "event.type", _event_type(_get(doc, f"{_OF}.evt.type")))
    result, failed = _get(doc, f"{_OF}.evt.res"), _get(doc, f"{_OF}.evt.failed")
    if result is not None and result == "SUCCESS":
        _set(doc, "event.outcome", "success")
    if result is not None and result != "SUCCESS" and failed is True:
        _set(doc, "event.outcome", "failure")
    tags = _get(doc, "falco.tags")
    if isinstance(tags, list):
        for tag in tags:
            found = _TECHNIQUE.search(str(tag))
            if found:
                _set(doc, "threat.technique.id", [found.group()])
                break
    if PRESERVE_ORIGINAL in (_get(doc, "tags") or []):
        _copy(doc, "event.original", "message")
    priority = _get(doc, "falco.priority")
    if priority is not None and str(priority).lower() in _SEVERITY:
        _set(doc, "event.severity", _SEVERITY[str(priority).lower()])
    _copy(doc, "rule.name", "falco.rule")
    _copy(doc, "event.sequence", f"{_OF}.evt.num")
    moment = _falco_timestamp(_get(doc, f"{_OF}.evt.time"))
    if moment is not None:
        _set(doc, "@timestamp", moment)
    _copy(doc, "event.start", f"{_OF}.evt.time.iso8601")
    _copy(doc, "event.provider", "falco.source")
    _copy(doc, "observer.hostname", "falco.hostname")
    if _get(doc, "falco.hostname") is not None:
        _append_unique(doc, "related.hosts", [_mustache(_get(doc, "falco.hostname"))])
    _falco_process(doc)
    _falco_container_and_network(doc)
    mounts = _get(doc, f"{_OF}.container.mounts")
    if mounts is not None:
        records = []
        for item in str(mounts).split(" "):
            parts = item.split(":")
            names = ("source", "dest", "mode", "rdrw", "propagation")
            records.append({name: parts[i] if len(parts) > i else None for i, name in enumerate(names)})
        doc["falco.container.mounts"] = records
    else:
        doc["falco.container.mounts"] = None
    _remove(doc, "message")
    for key in _FALCO_REMOVED:
        _remove(doc, f"{_OF}.{key}")
    if PRESERVE_FALCO_FIELDS not in (_get(doc, "tags") or []):
        _remove(doc, "falco")


def _falco_process(doc: Doc) -> None:
    for target, source in _FALCO_PROCESS_COPIES:
        _copy(doc, target, f"{_OF}.{source}")
    fd_type = _get(doc, f"{_OF}.fd.type")
    if fd_type in ("file", "directory"):
        _set(doc, "file.path", _mustache(_get(doc, f"{_OF}.fd.name") or ""))
        _set(doc, "file.type", _mustache(fd_type))
    exepath, args = _get(doc, f"{_OF}.proc.exepath"), _get(doc, f"{_OF}.proc.args")
    if exepath is not None and args is not None:
        _set(doc, "process.args", [exepath, *str(args).split(" ")])
    for target, source in _FALCO_PROCESS_COPIES_2:
        _copy(doc, target, f"{_OF}.{source}")
    env = _get(doc, f"{_OF}.proc.env")
    if env is not None:
        _set(doc, "process.env_vars", re.split(r"\s+", str(env)))
    for target, source in _FALCO_PROCESS_COPIES_3:
        _copy(doc, target, f"{_OF}.{source}")
    _convert(doc, f"{_OF}.proc.duration", "process.uptime", int)
    for target, source in _FALCO_PROCESS_COPIES_4:
        _copy(doc, target, f"{_OF}.{source}")
    uid = _get(doc, f"{_OF}.user.uid")
    if uid is not None:
        _set(doc, f"{_OF}.user.uid", _template_string(uid))
    for target, source in _FALCO_USER_COPIES:
        _copy(doc, target, f"{_OF}.{source}")


def _falco_container_and_network(doc: Doc) -> None:
    for target, source in _FALCO_CONTAINER_COPIES:
        _copy(doc, target, f"{_OF}.{source}")
    container_ip = _get(doc, f"{_OF}.container.ip")
    if container_ip is not None:
        _set(doc, "host.ip", [_mustache(container_ip)])
    _copy(doc, "file.directory", f"{_OF}.fd.directory")
    _copy(doc, "file.name", f"{_OF}.fd.filename")
    for endpoint in _FALCO_ENDPOINTS:
        _convert(doc, f"{_OF}.{endpoint}.ip", f"{endpoint}.ip", _to_ip)
        _copy(doc, f"{endpoint}.address", f"{endpoint}.ip")
    for target, source in (*_FALCO_PORTS, *_FALCO_DOMAINS, ("file.inode", "fd.ino"), *_FALCO_K8S_COPIES):
        _copy(doc, target, f"{_OF}.{source}")
    _convert(doc, f"{_OF}.k8s.pod.ip", "orchestrator.resource.ip", _to_ip)


def falco_agent_document(
    line: str, *, preserve_falco_fields: bool = False, preserve_original_event: bool = False
) -> Doc:
    """What the logfile stream sends for one line of Falco's JSON output (F1)."""
    doc: Doc = {"message": line}
    tags = [PRESERVE_ORIGINAL] if preserve_original_event else []
    if preserve_falco_fields:
        tags.append(PRESERVE_FALCO_FIELDS)
    if tags:
        doc["tags"] = tags
    _agent_fields(doc, "logs", FALCO_DATASET)
    return doc


def falco_document(
    native: Mapping[str, Any],
    original: str | None = None,
    *,
    preserve_falco_fields: bool = False,
    preserve_original_event: bool = False,
) -> Doc:
    line = original if original is not None else json.dumps(native, separators=(",", ":"))
    agent = falco_agent_document(
        line, preserve_falco_fields=preserve_falco_fields, preserve_original_event=preserve_original_event
    )
    time = native.get("time")
    if isinstance(time, str):  # stand-in for the agent's read time; evt.time overrides it when present
        with contextlib.suppress(PipelineFailure):
            agent["@timestamp"] = _iso_to_millis(time)
    return falco_pipeline(agent)


# --- zeek_conn ---------------------------------------------------------------------------------------------

_ZEEK_CONN_RENAMES = (
    ("duration", "temp.duration"),
    ("id.orig_h", "source.address"),
    ("id.orig_p", "source.port"),
    ("id.resp_h", "destination.address"),
    ("id.resp_p", "destination.port"),
    ("proto", "network.transport"),
    ("service", "network.protocol"),
    ("uid", "zeek.session_id"),
    ("orig_ip_bytes", "source.bytes"),
    ("resp_ip_bytes", "destination.bytes"),
    ("orig_pkts", "source.packets"),
    ("resp_pkts", "destination.packets"),
    ("conn_state", "zeek.connection.state"),
    ("orig_l2_addr", "source.mac"),
    ("resp_l2_addr", "destination.mac"),
)
_CONN_STATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "S0": ("Connection attempt seen, no reply.", ("connection", "start")),
    "S1": ("Connection established, not terminated.", ("connection", "start")),
    "SF": ("Normal establishment and termination.", ("connection", "start", "end")),
    "REJ": ("Connection attempt rejected.", ("connection", "start", "denied")),
    "S2": (
        "Connection established and close attempt by originator seen (but no reply from responder).",
        ("connection", "info"),
    ),
    "S3": (
        "Connection established and close attempt by responder seen (but no reply from originator).",
        ("connection", "info"),
    ),
    "RSTO": ("Connection established, originator aborted (sent a RST).", ("connection", "info")),
    "RSTR": ("Responder sent a RST.", ("connection", "info")),
    "RSTOS0": (
        "Originator sent a SYN followed by a RST, we never saw a SYN-ACK from the responder.",
        ("connection", "info"),
    ),
    "RSTRH": (
        "Responder sent a SYN ACK followed by a RST, we never saw a SYN from the (purported) originator.",
        ("connection", "info"),
    ),
    "SH": (
        "Originator sent a SYN followed by a FIN, we never saw a SYN ACK from the responder (hence the "
        "connection was 'half' open).",
        ("connection", "info"),
    ),
    "SHR": (
        "Responder sent a SYN ACK followed by a FIN, we never saw a SYN from the originator.",
        ("connection", "info"),
    ),
    "OTH": (
        "No SYN seen, just midstream traffic (a 'partial connection' that was not later closed).",
        ("connection", "info"),
    ),
}
_DIRECTIONS = {(True, True): "internal", (True, False): "outbound", (False, True): "inbound"}
_DIRECTIONS[(False, False)] = "external"


def _zeek_agent_document(line: str, dataset: str, tags: tuple[str, ...], preserve_original: bool) -> Doc:
    doc: Doc = {"message": line, "tags": [*tags, *([PRESERVE_ORIGINAL] if preserve_original else [])]}
    _agent_fields(doc, "logs", dataset)
    return doc


def _zeek_decode(doc: Doc, target: str) -> bool:
    """message -> event.original, JSON into `target`; False when the pipeline drops the event (no ts)."""
    if _get(doc, "event.original") is None:
        _rename(doc, "message", "event.original")
    try:
        parsed = json.loads(str(_get(doc, "event.original")))
    except json.JSONDecodeError as exc:
        raise PipelineFailure(f"Processor 'json' failed with message '{exc}'") from None
    if not isinstance(parsed, dict) or parsed.get("ts") is None:
        return False
    _set(doc, target, parsed)
    return True


def zeek_conn_pipeline(document: Mapping[str, Any]) -> Doc | None:
    """The zeek.connection ingest pipeline (Z2-Z5); None when it drops the event."""
    doc: Doc = copy.deepcopy(dict(document))
    try:
        if not _zeek_conn_steps(doc):
            return None
    except (PipelineFailure, ValueError, TypeError) as exc:
        _fail(doc, str(exc), preserve=False)
    return doc


def _zeek_conn_steps(doc: Doc) -> bool:
    conn = "zeek.connection"
    if not _zeek_decode(doc, conn):
        return False
    _copy(doc, "event.created", "@timestamp")
    _set(doc, "ecs.version", ZEEK_CONN_ECS_VERSION)
    _set(doc, "event.kind", "event")
    _set(doc, "event.category", ["network"])
    for key in ("id.orig_p", "id.orig_h", "id.resp_h", "id.resp_p"):
        with contextlib.suppress(PipelineFailure):
            _dot_expand(doc, conn, key)
    for source, target in _ZEEK_CONN_RENAMES:
        _rename(doc, f"{conn}.{source}", target)
    if _get(doc, "network.transport") == "icmp":
        _rename(doc, "source.port", f"{conn}.icmp.type")
        _rename(doc, "destination.port", f"{conn}.icmp.code")
    _copy(doc, "source.ip", "source.address")
    _copy(doc, "destination.ip", "destination.address")
    _community_id(doc, f"{conn}.icmp" if _get(doc, "network.transport") == "icmp" else None)
    _set(doc, "@timestamp", _unix_or_iso_to_millis(_get(doc, f"{conn}.ts")))
    _remove(doc, f"{conn}.ts")
    _copy(doc, "event.id", "zeek.session_id")
    duration = _get(doc, "temp.duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        _set(doc, "event.duration", round(Decimal(str(duration)) * 1_000_000_000))
    for flag in ("local_orig", "local_resp"):
        if _get(doc, f"{conn}.{flag}") is not None:
            _append_unique(doc, "tags", [flag])
    for side in ("source", "destination"):
        if _get(doc, f"{side}.ip") is not None:
            _append_unique(doc, "related.ip", [_template_string(_get(doc, f"{side}.ip"))])
    for total, part in (("network.packets", "packets"), ("network.bytes", "bytes")):
        left, right = _get(doc, f"source.{part}"), _get(doc, f"destination.{part}")
        if isinstance(left, int) and isinstance(right, int):
            _set(doc, total, left + right)
    local = (_get(doc, f"{conn}.local_orig"), _get(doc, f"{conn}.local_resp"))
    if all(isinstance(v, bool) for v in local):
        _set(doc, "network.direction", _DIRECTIONS[(bool(local[0]), bool(local[1]))])
    state = _get(doc, f"{conn}.state")
    if isinstance(state, str) and state in _CONN_STATES:
        message, types = _CONN_STATES[state]
        _set(doc, f"{conn}.state_message", message)
        _set(doc, "event.type", list(types))
    for path in (f"{conn}.id", f"{conn}.orig_bytes", f"{conn}.resp_bytes", f"{conn}.tunnel_parents"):
        _remove(doc, path)
    for path in ("message", "json", "temp"):
        _remove(doc, path)
    if PRESERVE_ORIGINAL not in (_get(doc, "tags") or []):
        _remove(doc, "event.original")
    return True


def zeek_conn_document(native: Mapping[str, Any], original: str | None = None) -> Doc:
    line = original if original is not None else json.dumps(native, separators=(",", ":"))
    agent = _zeek_agent_document(line, ZEEK_CONN_DATASET, ZEEK_CONN_TAGS, False)
    with contextlib.suppress(PipelineFailure):  # stand-in for the agent's read time
        agent["@timestamp"] = _unix_or_iso_to_millis(native.get("ts"))
    return zeek_conn_pipeline(agent) or {}


# --- zeek_dns ----------------------------------------------------------------------------------------------

_QCLASS = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}


def zeek_dns_pipeline(document: Mapping[str, Any]) -> Doc | None:
    """The zeek.dns ingest pipeline (D2-D3); None when it drops the event."""
    doc: Doc = copy.deepcopy(dict(document))
    try:
        if not _zeek_dns_steps(doc):
            return None
    except (PipelineFailure, ValueError, TypeError) as exc:
        _fail(doc, str(exc), preserve=True)
    return doc


def _zeek_dns_steps(doc: Doc) -> bool:
    dns = "zeek.dns"
    if not _zeek_decode(doc, dns):
        return False
    _copy(doc, "event.created", "@timestamp")
    _set(doc, "event.kind", "event")
    _set(doc, "ecs.version", ZEEK_DNS_ECS_VERSION)
    _append_unique(doc, "event.category", ["network"])
    for value in ("connection", "protocol", "info"):
        current = _get(doc, "event.type")
        _set(doc, "event.type", [*(current if isinstance(current, list) else []), value])
    _set(doc, "network.protocol", "dns")
    for key in ("id.orig_p", "id.orig_h", "id.resp_h", "id.resp_p"):
        with contextlib.suppress(PipelineFailure):
            _dot_expand(doc, dns, key)
    for source, target in (
        ("id.orig_h", "source.address"),
        ("id.orig_p", "source.port"),
        ("id.resp_h", "destination.address"),
        ("id.resp_p", "destination.port"),
        ("uid", "zeek.session_id"),
        ("proto", "network.transport"),
    ):
        _rename(doc, f"{dns}.{source}", target)
    _copy(doc, "event.id", "zeek.session_id")
    _copy(doc, "source.ip", "source.address")
    _copy(doc, "destination.ip", "destination.address")
    for flag in ("AA", "TC", "RD", "RA"):
        if _get(doc, f"{dns}.{flag}") is True:
            current = _get(doc, "dns.header_flags")
            _set(doc, "dns.header_flags", [*(current if isinstance(current, list) else []), flag])
    qclass = _get(doc, f"{dns}.qclass")
    if isinstance(qclass, int) and not isinstance(qclass, bool) and qclass in _QCLASS:
        _set(doc, "dns.question.class", _QCLASS[qclass])
    if _get(doc, f"{dns}.rcode_name") is not None:
        _set(doc, "dns.type", "answer")
    if _get(doc, "dns.type") is None:
        _set(doc, "dns.type", "query")
    rtt = _get(doc, f"{dns}.rtt")
    if isinstance(rtt, (int, float)) and not isinstance(rtt, bool):
        _set(doc, "event.duration", rtt * 1_000_000_000)
    answers, ttls = _get(doc, f"{dns}.answers"), _get(doc, f"{dns}.TTLs")
    if (
        isinstance(answers, list)
        and isinstance(ttls, list)
        and answers
        and ttls
        and len(answers) == len(ttls)
    ):
        _set(doc, "dns.answers", [{"data": a, "ttl": int(t)} for a, t in zip(answers, ttls, strict=True)])
        resolved = []
        for answer in answers:
            with contextlib.suppress(ValueError):
                resolved.append(_to_ip(answer))
        _set(doc, "dns.resolved_ip", resolved)
    _set(doc, "event.outcome", "success")
    trans_id = _get(doc, f"{dns}.trans_id")
    if trans_id is not None:
        _set(doc, f"{dns}.trans_id", _template_string(trans_id))
    _copy(doc, "dns.id", f"{dns}.trans_id")
    _copy(doc, "dns.question.type", f"{dns}.qtype_name")
    _copy(doc, "dns.response_code", f"{dns}.rcode_name")
    _set(doc, "@timestamp", _unix_or_iso_to_millis(_get(doc, f"{dns}.ts")))
    _remove(doc, f"{dns}.ts")
    _community_id(doc)
    if _get(doc, "source.address") is not None and _get(doc, "source.ip") is not None:
        _append_unique(doc, "related.ip", [_template_string(_get(doc, "source.ip"))])
    if _get(doc, "destination.ip") is not None:
        _append_unique(doc, "related.ip", [_template_string(_get(doc, "destination.ip"))])
    for key in ("Z", "auth", "addl", "id"):
        _remove(doc, f"{dns}.{key}")
    return True


def zeek_dns_document(native: Mapping[str, Any], original: str | None = None) -> Doc:
    line = original if original is not None else json.dumps(native, separators=(",", ":"))
    agent = _zeek_agent_document(line, ZEEK_DNS_DATASET, ZEEK_DNS_TAGS, False)
    with contextlib.suppress(PipelineFailure):
        agent["@timestamp"] = _unix_or_iso_to_millis(native.get("ts"))
    return zeek_dns_pipeline(agent) or {}


def network_document(datasource: str, native: Mapping[str, Any], original: str | None = None) -> Doc:
    """Entry point for `detpack.ingest.ecs.ecs_document`."""
    if datasource == "falco_alerts":
        return falco_document(native, original)
    if datasource == "zeek_conn":
        return zeek_conn_document(native, original)
    if datasource == "zeek_dns":
        return zeek_dns_document(native, original)
    raise ValueError(f"no Elastic ingest model for data source {datasource!r}")
