#!/usr/bin/env python3
"""Generates alerts.yml, fleet-exporter's Prometheus alert rules, from `_config` below.

    python3 config/prometheus/alerts.py           # rewrite alerts.yml and the PrometheusRule
    python3 config/prometheus/alerts.py --check   # exit 1 when alerts.yml is not what this makes

The monitoring-mixin convention without jsonnet: the settings a deployment changes are in
`_config`, every rule is written in terms of them, and alerts.yml is the output (CI checks it is
up to date). A job named differently is one edit of `selector`.

How the rules are written, so that two exporter replicas (HA), the `fleet` job and the
`fleet-probe` job, alone or together, give one alert per device and never a failed evaluation:
each rule aggregates its series `by` the labels that identify the device or entity (target,
interface, uuid, ...), with `max` for states and levels where worse is higher and `min` where
worse is lower, so the copies that differ only in `job` and `instance` become one. Joins of two
families happen inside the aggregation, where both sides still carry `job` and `instance` and
match one to one.
"""
import json
import pathlib
import sys

_config = {
    # The scrape jobs that read fleet-exporter: both shipped job names (prometheus.yml).
    "selector": 'job=~"fleet|fleet-probe"',
    # Where docs/runbook.md is read; each rule links to its section (#alertname in lowercase).
    # Set it to the URL your team opens, e.g. the file on your Git forge.
    "runbook_base": "docs/runbook.md",
    # SIP registrations are refreshed well before they expire (the gateway's default period is
    # 3600 s); less than this many seconds left, for 3 minutes, means refreshes fail.
    "sip_expiry_warning_seconds": 300,
    # An exporter's resident memory is about 20 MiB plus 150-300 bytes per series it holds
    # (BENCHMARKS.md); above this base plus this much per series, for 30 minutes, it grows
    # beyond what its series explain (a leak, or scrapers piling up).
    "exporter_memory_base_bytes": 128 * 1024 * 1024,
    "exporter_memory_bytes_per_series": 1024,
    # A gateway whose clock is off by more than this many seconds, for 15 minutes, writes call
    # records at the wrong time and may fail SIP authentication (digest nonces, TLS).
    "clock_offset_warning_seconds": 60,
    # A WAN line that stays up but loses more than this share of the router's quality probes,
    # or whose round trip stays above this many seconds, for 10 minutes, degrades every
    # connection through it (the router's own probe; see ikuai_wan_* in docs/metrics.md).
    "wan_loss_ratio_warning": 0.05,
    "wan_rtt_warning_seconds": 0.2,
}

S = _config["selector"]


def m(name, extra=""):
    """A selector of `name` limited to the exporter's jobs, with `extra` matchers."""
    return f"{name}{{{S}{', ' + extra if extra else ''}}}"


CPU_ALL = m("ikuai_cpu_usage_ratio", 'cpu="all"')
ALARMED = m("openvox_port_alarm", 'alarm!="ok"')
BILLED = m("iot_sim_data_used_bytes", 'kind="billed"')
FAILED_REQUESTS = m("iot_api_requests_total", 'code!="0"')


def rule(alert, expr, for_, severity, summary, description):
    return {
        "alert": alert,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{_config['runbook_base']}#{alert.lower()}",
        },
    }


EXPORTER = [
    rule(
        "FleetExporterDown",
        f"max by (instance) ({m('up')}) == 0 or absent({m('up')})",
        "2m", "critical",
        "fleet-exporter {{ with $labels.instance }}{{ . }}{{ else }}(none scraped){{ end }} is down",
        "Prometheus has not been able to scrape {{ with $labels.instance }}the exporter at {{ . }}"
        "{{ else }}any fleet-exporter{{ end }} for 2 minutes. While it is down no device alert "
        "of its targets can fire, and those that fired have resolved.",
    ),
    rule(
        "FleetTargetDown",
        f"max by (target, kind) ({m('fleet_target_up')}) == 0",
        "5m", "critical",
        "{{ $labels.kind }} target {{ $labels.target }} is down",
        "fleet-exporter has not been able to poll {{ $labels.target }} ({{ $labels.kind }}) for "
        "5 minutes; see fleet_target_poll_errors_total for the reason and the exporter's status "
        "page for the last error.",
    ),
    rule(
        "FleetTargetPollsFailing",
        f"max by (target, kind, reason) (increase({m('fleet_target_poll_errors_total')}[15m])) > 2"
        f" and on (target, kind) max by (target, kind) ({m('fleet_target_up')}) == 1",
        "15m", "warning",
        "Parts of {{ $labels.target }}'s polls fail ({{ $labels.reason }})",
        "{{ $labels.target }} ({{ $labels.kind }}) is up but {{ $value | humanize }} poll "
        "sections failed with reason {{ $labels.reason }} in the last 15 minutes; some of its "
        "series are missing.",
    ),
    rule(
        "FleetExporterMemoryHigh",
        f"max by (instance) ({m('process_resident_memory_bytes')}) > "
        f"{_config['exporter_memory_base_bytes']} + {_config['exporter_memory_bytes_per_series']} * "
        f"(sum by (instance) (max by (instance, target) ({m('fleet_target_series')})) "
        f"or on (instance) max by (instance) ({m('process_resident_memory_bytes')}) * 0)",
        "30m", "warning",
        "fleet-exporter on {{ $labels.instance }} uses {{ $value | humanize1024 }}B of memory",
        f"The exporter's resident memory has stayed above "
        f"{_config['exporter_memory_base_bytes'] // (1024 * 1024)} MiB plus "
        f"{_config['exporter_memory_bytes_per_series']} bytes per series it holds for 30 "
        "minutes, several times what its series need; left alone it may be killed for memory.",
    ),
    rule(
        "FleetExporterConfigReloadFailed",
        f"max by (instance) ({m('fleet_exporter_config_last_reload_successful')}) == 0",
        "5m", "warning",
        "fleet-exporter on {{ $labels.instance }} rejected its new config",
        "The last configuration reload failed validation; the previous config is still running. "
        "Run fleet-exporter --config.check to see why.",
    ),
    rule(
        "FleetExporterShardsDisagree",
        f"count by (shards) ({m('fleet_exporter_shard_info')}) and on () "
        f"(count(count by (shards) ({m('fleet_exporter_shard_info')})) > 1)",
        "10m", "warning",
        "fleet-exporter replicas run with different shard counts",
        "{{ $value }} replica(s) run with --shard I/{{ $labels.shards }} while others run with "
        "another N, so some targets are polled by two replicas and some by none. Give every "
        "replica the same N.",
    ),
]

IKUAI = [
    rule(
        "IkuaiWanLineDown",
        f"max by (target, interface) ({m('ikuai_interface_up')}) == 0",
        "3m", "critical",
        "WAN line {{ $labels.interface }} on {{ $labels.target }} is down",
        "The router {{ $labels.target }} reports that its line check on "
        "{{ $labels.interface }} has failed for 3 minutes.",
    ),
    rule(
        "IkuaiWanPacketLoss",
        f"max by (target, interface) ({m('ikuai_wan_loss_ratio')}) "
        f"> {_config['wan_loss_ratio_warning']}",
        "10m", "warning",
        "WAN line {{ $labels.interface }} on {{ $labels.target }} is losing packets",
        "The router {{ $labels.target }} has lost {{ $value | humanizePercentage }} of its "
        "quality probes on {{ $labels.interface }} for 10 minutes.",
    ),
    rule(
        "IkuaiWanLatencyHigh",
        f"min by (target, interface) ({m('ikuai_wan_rtt_seconds')}) "
        f"> {_config['wan_rtt_warning_seconds']}",
        "10m", "warning",
        "WAN line {{ $labels.interface }} on {{ $labels.target }} is slow",
        "The round trip of {{ $labels.target }}'s quality probe on {{ $labels.interface }} has "
        "been {{ $value | humanizeDuration }} for 10 minutes.",
    ),
    rule(
        "IkuaiCpuHigh",
        f"max by (target) ({CPU_ALL}) > 0.9",
        "15m", "warning",
        "CPU of {{ $labels.target }} above 90%",
        "The router {{ $labels.target }} has used {{ $value | humanizePercentage }} of its CPU "
        "for 15 minutes.",
    ),
    rule(
        "IkuaiMemoryHigh",
        f"max by (target) (1 - {m('ikuai_memory_available_bytes')} / "
        f"{m('ikuai_memory_total_bytes')}) > 0.9",
        "15m", "warning",
        "Memory of {{ $labels.target }} above 90%",
        "The router {{ $labels.target }} has {{ $value | humanizePercentage }} of its memory in "
        "use for 15 minutes.",
    ),
    rule(
        "IkuaiDhcpPoolExhausted",
        f"min by (target) ({m('ikuai_dhcp_pool_available_addresses')}) < 5",
        "10m", "warning",
        "DHCP pool of {{ $labels.target }} nearly empty",
        "Only {{ $value }} addresses are left in the DHCP pools of {{ $labels.target }}; new "
        "clients may get no address.",
    ),
    rule(
        "IkuaiDiskAlmostFull",
        f"max by (target, partition) (1 - {m('ikuai_filesystem_available_bytes')} / "
        f"{m('ikuai_filesystem_size_bytes')}) > 0.9",
        "30m", "warning",
        "Partition {{ $labels.partition }} of {{ $labels.target }} above 90%",
        "The file system on {{ $labels.partition }} of the router {{ $labels.target }} has had "
        "{{ $value | humanizePercentage }} of its space unavailable for 30 minutes.",
    ),
]

KOMARI = [
    rule(
        "KomariNodeOffline",
        f"max by (target, uuid) ({m('komari_node_online')}) == 0",
        "5m", "warning",
        "Komari node {{ $labels.uuid }} on {{ $labels.target }} is offline",
        "The node {{ $labels.uuid }} has not reported to the Komari server {{ $labels.target }} "
        "for 5 minutes; its name is in komari_node_info.",
    ),
    rule(
        "KomariNodeDiskAlmostFull",
        f"max by (target, uuid) ({m('komari_node_disk_used_bytes')} / "
        f"{m('komari_node_disk_total_bytes')}) > 0.9",
        "15m", "warning",
        "Disk of Komari node {{ $labels.uuid }} above 90%",
        "The node {{ $labels.uuid }} on {{ $labels.target }} has used "
        "{{ $value | humanizePercentage }} of its disk for 15 minutes.",
    ),
    rule(
        "KomariNodeExpiringSoon",
        f"min by (target, uuid) ({m('komari_node_expiry_timestamp_seconds')}) - time() "
        "< 7 * 86400",
        "10m", "info",
        "Komari node {{ $labels.uuid }} expires within a week",
        "The plan of node {{ $labels.uuid }} on {{ $labels.target }} ends in "
        "{{ $value | humanizeDuration }}.",
    ),
    rule(
        "KomariNodePingLoss",
        f"max by (target, uuid, task_id) ({m('komari_node_ping_loss_ratio')}) > 0.1",
        "15m", "warning",
        "Komari node {{ $labels.uuid }} loses {{ $value | humanizePercentage }} of its pings",
        "Ping task {{ $labels.task_id }} of node {{ $labels.uuid }} on {{ $labels.target }} has "
        "lost more than 10% of its probes over the last hour, for 15 minutes; "
        "komari_ping_task_info names the task.",
    ),
]

OPENVOX = [
    rule(
        "OpenvoxPortInAlarm",
        f"max by (target, slot, port, alarm) ({ALARMED}) == 1",
        "5m", "critical",
        "Port {{ $labels.slot }}/{{ $labels.port }} of {{ $labels.target }} is in "
        "{{ $labels.alarm }} alarm",
        "The FXS/FXO port {{ $labels.port }} on slot {{ $labels.slot }} of the gateway "
        "{{ $labels.target }} has reported the {{ $labels.alarm }} alarm for 5 minutes.",
    ),
    rule(
        "OpenvoxSipRegistrationLost",
        f"max by (target, slot, account) ({m('openvox_sip_registration_status')} == bool 1) == 0",
        "5m", "critical",
        "SIP account {{ $labels.account }} on {{ $labels.target }} is not registered",
        "The SIP account {{ $labels.account }} (slot {{ $labels.slot }}) of the gateway "
        "{{ $labels.target }} has not been registered for 5 minutes; "
        "openvox_sip_registration_info has the device's own word.",
    ),
    rule(
        "OpenvoxSipRegistrationExpiring",
        f"max by (target, slot, account) ({m('openvox_sip_registration_expiry_seconds')}) < "
        f"{_config['sip_expiry_warning_seconds']} and on (target, slot, account) "
        f"max by (target, slot, account) ({m('openvox_sip_registration_status')} == bool 1) == 1",
        "3m", "warning",
        "SIP registration of {{ $labels.account }} on {{ $labels.target }} is about to expire",
        "The SIP account {{ $labels.account }} (slot {{ $labels.slot }}) of the gateway "
        "{{ $labels.target }} is registered but its registration expires in "
        "{{ $value | humanizeDuration }} and has not been refreshed for 3 minutes; calls to it "
        "fail once it expires.",
    ),
    rule(
        "OpenvoxConfigNotApplied",
        f"max by (target, scope) ({m('openvox_config_unapplied')}) == 1",
        "1d", "warning",
        "{{ $labels.scope }} configuration of {{ $labels.target }} is saved but not applied",
        "The gateway {{ $labels.target }} has had {{ $labels.scope }} configuration changes "
        "that were saved but not applied for a day: the running configuration is not what the "
        "web UI shows, and a reboot applies them unannounced.",
    ),
    rule(
        "OpenvoxClockOffset",
        f"max by (target) (abs({m('openvox_clock_offset_seconds')})) > "
        f"{_config['clock_offset_warning_seconds']}",
        "15m", "warning",
        "The clock of {{ $labels.target }} is off by {{ $value | humanizeDuration }}",
        "The gateway {{ $labels.target }}'s clock has differed from the exporter's by more than "
        f"{_config['clock_offset_warning_seconds']} s for 15 minutes (openvox_ntp_enabled says "
        "whether it synchronises by NTP); call records carry wrong times and SIP may fail.",
    ),
]

IOT = [
    rule(
        "IotDeviceOffline",
        f"max by (target, device_no) ({m('iot_device_online')}) == 0",
        "15m", "warning",
        "IoT device {{ $labels.device_no }} on {{ $labels.target }} is offline",
        "The portable Wi-Fi device {{ $labels.device_no }} has been offline for 15 minutes "
        "according to the platform {{ $labels.target }}.",
    ),
    rule(
        "IotDeviceBatteryLow",
        f"min by (target, device_no) ({m('iot_device_battery_ratio')}) < 0.15 and on (target, "
        f"device_no) max by (target, device_no) ({m('iot_device_online')}) == 1",
        "10m", "warning",
        "Battery of IoT device {{ $labels.device_no }} below 15%",
        "The device {{ $labels.device_no }} on {{ $labels.target }} has "
        "{{ $value | humanizePercentage }} battery left.",
    ),
    rule(
        "IotSimDataNearQuota",
        f"max by (target, device_no, iccid, slot) ({BILLED}"
        f" / ignoring (kind) {m('iot_sim_data_limit_bytes')}) > 0.9",
        "10m", "warning",
        "SIM {{ $labels.iccid }} has used over 90% of its data",
        "The {{ $labels.slot }} SIM {{ $labels.iccid }} of device {{ $labels.device_no }} on "
        "{{ $labels.target }} has used {{ $value | humanizePercentage }} of its plan.",
    ),
    rule(
        "IotSimPlanExpiring",
        f"min by (target, device_no, iccid, slot) ({m('iot_sim_plan_expiry_timestamp_seconds')})"
        " - time() < 7 * 86400",
        "10m", "info",
        "Plan of SIM {{ $labels.iccid }} expires within a week",
        "The plan of the {{ $labels.slot }} SIM {{ $labels.iccid }} in device "
        "{{ $labels.device_no }} on {{ $labels.target }} ends in {{ $value | humanizeDuration }}.",
    ),
    rule(
        "IotSimInArrears",
        f"max by (target, iccid) ({m('iot_sim_arrears_balance')} or "
        f"{m('iot_card_arrears_balance')}) > 0",
        "1h", "warning",
        "SIM {{ $labels.iccid }} on {{ $labels.target }} is in arrears",
        "The SIM card {{ $labels.iccid }} on the platform {{ $labels.target }} has owed "
        "{{ $value }} (the platform's unit) for an hour; the carrier may suspend it.",
    ),
    rule(
        "IotDeviceFetchFailing",
        f"max by (target, device_no) ({m('iot_device_fetch_success')}) == 0",
        "15m", "warning",
        "The platform {{ $labels.target }} gives no data for IoT device {{ $labels.device_no }}",
        "Every request for device {{ $labels.device_no }} to the platform {{ $labels.target }} "
        "has failed for 15 minutes (an unknown device number, or failing requests); its series "
        "are missing.",
    ),
    rule(
        "IotPlatformRequestsFailing",
        f"max by (target) (sum by (job, instance, target) "
        f"(rate({FAILED_REQUESTS}[15m])) / sum by (job, instance, "
        f"target) (rate({m('iot_api_requests_total')}[15m]))) > 0.25",
        "15m", "warning",
        "{{ $value | humanizePercentage }} of requests to the platform {{ $labels.target }} fail",
        "More than a quarter of fleet-exporter's requests to the IoT platform "
        "{{ $labels.target }} have failed over 15 minutes; iot_api_requests_total by code says "
        "how (platform codes, http_<status>, timeout, connect, decode).",
    ),
]

GROUPS = [
    ("fleet-exporter", EXPORTER),
    ("ikuai", IKUAI),
    ("komari", KOMARI),
    ("openvox", OPENVOX),
    ("iot", IOT),
]


def render():
    q = json.dumps  # a JSON string is a YAML double-quoted scalar
    out = [
        "# Generated by config/prometheus/alerts.py from its _config: edit that file, then run",
        "# `python3 config/prometheus/alerts.py`. Tests: alerts.test.yml (promtool test rules).",
        "groups:",
    ]
    for name, rules in GROUPS:
        out += [f"  - name: {name}", "    rules:"]
        for r in rules:
            out += [
                f"      - alert: {r['alert']}",
                # single-quoted: PromQL's double quotes stay readable
                f"        expr: '{r['expr']}'" if "'" not in r["expr"] else f"        expr: {q(r['expr'])}",
                f"        for: {r['for']}",
                "        labels:",
                f"          severity: {r['labels']['severity']}",
                "        annotations:",
            ]
            out += [f"          {k}: {q(v)}" for k, v in r["annotations"].items()]
        out.append("")
    return "\n".join(out)


def render_prometheus_rule():
    """The same groups as a prometheus-operator PrometheusRule, for deploy/kubernetes/."""
    groups = render().split("\ngroups:\n", 1)[1]
    out = [
        "# Generated by config/prometheus/alerts.py, with the groups of config/prometheus/alerts.yml:",
        "# edit that file, then run `python3 config/prometheus/alerts.py`.",
        "apiVersion: monitoring.coreos.com/v1",
        "kind: PrometheusRule",
        "metadata:",
        "  name: fleet-exporter",
        "  labels:",
        "    app.kubernetes.io/name: fleet-exporter",
        "spec:",
        "  groups:",
    ]
    out += [f"  {line}" if line else "" for line in groups.rstrip("\n").split("\n")]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    here = pathlib.Path(__file__).resolve().parent
    outputs = {
        here / "alerts.yml": render(),
        here.parent.parent / "deploy/kubernetes/prometheus-operator/prometheusrule.yaml":
            render_prometheus_rule(),
    }
    for path, text in outputs.items():
        if sys.argv[1:] == ["--check"]:
            if not path.exists() or path.read_text() != text:
                sys.exit(f"{path} is not what {__file__} generates: run python3 {__file__}")
            print(f"{path}: up to date with {pathlib.Path(__file__).name}")
        else:
            path.write_text(text)
