//! The report as markdown tables, printed to stdout and pasted into `docs/benchmarks.md`.

use super::{PhaseReport, Report};
use std::fmt::Write;

/// The whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let m = &report.meta;
    let _ = writeln!(out, "## qgate-bench {}\n", m.date);
    let _ = writeln!(out, "- command: `{}`", m.command);
    let _ = writeln!(
        out,
        "- machine: {} cores, {}, kernel {}",
        m.nproc, m.cpu_model, m.kernel
    );
    let _ = writeln!(
        out,
        "- qgate: `{}` with {} simulated account(s); nginx: {}",
        m.qgate_binary,
        m.accounts,
        m.nginx.as_deref().unwrap_or("not run")
    );
    let _ = writeln!(out, "- simulator: `{}`", m.simulator);
    let _ = writeln!(out, "- mix: {}", m.mix.join(", "));
    let _ = writeln!(out, "- open-file limit: {}", m.nofile_limit);
    for note in &m.notes {
        let _ = writeln!(out, "- {note}");
    }
    for phase in &report.phases {
        render_phase(&mut out, phase);
    }
    if !report.frame_cost.is_empty() {
        let _ = writeln!(
            out,
            "\n### CPU per upstream frame (closed loop, streamed, 20 vs 200 frames)\n"
        );
        let _ = writeln!(
            out,
            "| relay | CPU µs/req, 20 frames | CPU µs/req, 200 frames | CPU µs per extra frame |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for cost in &report.frame_cost {
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.2} |",
                cost.target,
                cost.cpu_us_per_request_20_frames,
                cost.cpu_us_per_request_200_frames,
                cost.cpu_us_per_extra_frame
            );
        }
    }
    render_memory(&mut out, report);
    let _ = writeln!(
        out,
        "\n**Errors: {}** (measured phases, streams phase and warm-up: {} in warm-up).",
        report.errors_total, report.warmup_errors
    );
    out
}

fn us(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}"))
}

fn signed(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:+.0}"))
}

fn render_phase(out: &mut String, phase: &PhaseReport) {
    let _ = writeln!(
        out,
        "\n### {}: {}, {:.0} s per target\n",
        phase.name, phase.shape, phase.duration_s
    );
    let _ = writeln!(
        out,
        "| target | requests | errors | req/s | p50 µs | p90 µs | p99 µs | max µs | TTFT p50 | TTFT p99 | chunk p50 | chunk p99 | relay CPU µs/req | sim CPU µs/req | client CPU µs/req (cores) |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for t in &phase.targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} ({:.2}) |",
            t.target,
            t.requests,
            t.error_total,
            t.throughput_rps,
            us(t.latency.map(|p| p.p50_us)),
            us(t.latency.map(|p| p.p90_us)),
            us(t.latency.map(|p| p.p99_us)),
            us(t.latency.map(|p| p.max_us)),
            us(t.ttft.map(|p| p.p50_us)),
            us(t.ttft.map(|p| p.p99_us)),
            us(t.chunk_relay.map(|p| p.p50_us)),
            us(t.chunk_relay.map(|p| p.p99_us)),
            us(t.cpu.relay_us_per_request),
            t.cpu.sim_us_per_request,
            t.cpu.client_us_per_request,
            t.cpu.client_cores,
        );
    }
    if let Some(lag) = phase.targets.iter().find_map(|t| t.send_lag) {
        let _ = writeln!(
            out,
            "\nHarness send lag (first target): p50 {:.0} µs, p99 {:.0} µs — included in every target's latency alike.",
            lag.p50_us, lag.p99_us
        );
    }
    if !phase.added.is_empty() {
        let _ = writeln!(
            out,
            "\nAdded over direct (same run, percentile minus percentile):\n"
        );
        let _ = writeln!(
            out,
            "| relay | +p50 µs | +p90 µs | +p99 µs | +TTFT p50 | +TTFT p99 | +chunk p50 | +chunk p99 |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for a in &phase.added {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                a.target,
                signed(a.latency_p50_us),
                signed(a.latency_p90_us),
                signed(a.latency_p99_us),
                signed(a.ttft_p50_us),
                signed(a.ttft_p99_us),
                signed(a.chunk_p50_us),
                signed(a.chunk_p99_us),
            );
        }
    }
    if let Some(ratio) = phase.cpu_ratio_qgate_over_nginx {
        let _ = writeln!(out, "\nqgate / nginx CPU per request: **{ratio:.2}×**");
    }
}

fn render_memory(out: &mut String, report: &Report) {
    let memory = &report.memory;
    let _ = writeln!(out, "\n### Memory (RSS)\n");
    let kib = |v: Option<u64>| {
        v.map_or_else(
            || "–".to_owned(),
            |v| format!("{:.1} MiB", v as f64 / 1024.0),
        )
    };
    let _ = writeln!(
        out,
        "- qgate idle after start and warm-up ({} accounts): {}; after all load phases: {}",
        report.meta.accounts,
        kib(memory.qgate_idle_rss_kib),
        kib(memory.qgate_after_load_rss_kib)
    );
    for (after, rss) in [
        ("the load phases", memory.qgate_settled_rss_kib),
        ("the held streams ended", memory.qgate_after_streams_rss_kib),
    ] {
        if rss.is_some() {
            let _ = writeln!(
                out,
                "- qgate idle {:.0} s after {after}: {}",
                memory.settle_secs,
                kib(rss)
            );
        }
    }
    let _ = writeln!(
        out,
        "- nginx idle (master + workers): {}",
        kib(memory.nginx_idle_rss_kib)
    );
    if memory.streams.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n| relay | streams sent | peak in flight at sim | ramp to peak | RSS before | RSS at peak | per stream in flight | ok | errors |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (target, s) in &memory.streams {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} s | {} | {} | {:.1} KiB | {} | {} |",
            target,
            s.streams,
            s.peak_in_flight,
            s.ramp_s,
            kib(Some(s.rss_before_kib)),
            kib(Some(s.rss_open_kib)),
            s.per_stream_kib,
            s.ok,
            s.errors
        );
    }
}
