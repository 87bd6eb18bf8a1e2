//! `accrete devices`: every adapter wgpu can see, with the limits and features accrete
//! cares about, marking the one `Gpu::new` would open (core's `choose_adapter`, the same
//! rule device creation follows).

use crate::{environment_help, Failure};
use accrete::gpu::{choose_adapter, AdapterChoice as Choice};
use accrete::{list_adapters, AdapterSummary, GpuOptions};
use clap::Args;
use serde::Serialize;
use std::io::{self, Write};

pub const EXAMPLES: &str = concat!(
    "Examples:
  accrete devices                        human-readable list, best adapter first
  accrete devices --json | head -1       the adapter accrete picks by default, as JSON
  ACCRETE_ADAPTER=llvmpipe accrete devices
  WGPU_BACKEND=vulkan accrete devices --json

",
    environment_help!()
);

#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// Print one JSON object per adapter and line (the adapter summary plus "index" and "selected").
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &DevicesArgs) -> Result<(), Failure> {
    let options = GpuOptions::from_env();
    let adapters = pollster::block_on(list_adapters(&options));
    if adapters.is_empty() {
        // Let core build its "no adapter" error, which carries the installation hint.
        pollster::block_on(accrete::Gpu::with_options(options.clone()))?;
    }
    let choice = choose_adapter(&adapters, options.adapter.as_deref());
    let mut out = io::stdout().lock();
    if args.json {
        for (i, a) in adapters.iter().enumerate() {
            writeln!(out, "{}", json_line(a, i, choice.index() == Some(i)))?;
        }
    } else {
        write_human(&mut out, &adapters, &choice)?;
    }
    out.flush()?;
    if let Choice::NoMatch(wanted) = &choice {
        let _ = writeln!(
            io::stderr(),
            "warning: no adapter name contains ACCRETE_ADAPTER={wanted:?}, so accrete would refuse to start; \
             unset it or use part of one of the names above"
        );
    }
    Ok(())
}

/// One line of `--json`: the position in the list, whether accrete picks it, and the summary.
#[derive(Serialize)]
struct Listed<'a> {
    index: usize,
    selected: bool,
    #[serde(flatten)]
    adapter: &'a AdapterSummary,
}

fn json_line(adapter: &AdapterSummary, index: usize, selected: bool) -> String {
    serde_json::to_string(&Listed {
        index,
        selected,
        adapter,
    })
    .expect("an adapter summary is plain data")
}

fn write_human(
    out: &mut impl Write,
    adapters: &[AdapterSummary],
    choice: &Choice,
) -> io::Result<()> {
    let how = match choice {
        Choice::Best(_) => "* marks the adapter accrete uses (the first; set ACCRETE_ADAPTER to pick another)".to_string(),
        Choice::Matched(_, w) => format!("* marks the adapter accrete uses (the first whose name contains ACCRETE_ADAPTER={w:?})"),
        Choice::NoMatch(w) => format!("no adapter matches ACCRETE_ADAPTER={w:?}"),
        Choice::None => String::new(),
    };
    let plural = if adapters.len() == 1 { "" } else { "s" };
    writeln!(out, "{} adapter{plural}, best first; {how}", adapters.len())?;
    for (i, a) in adapters.iter().enumerate() {
        let mark = if choice.index() == Some(i) { '*' } else { ' ' };
        writeln!(out)?;
        writeln!(out, "{mark} [{i}] {}", a.name)?;
        let driver = match (a.driver.is_empty(), a.driver_info.is_empty()) {
            (true, true) => "(not reported)".to_string(),
            (false, true) => a.driver.clone(),
            (true, false) => a.driver_info.clone(),
            (false, false) => format!("{} ({})", a.driver, a.driver_info),
        };
        let features = if a.features.is_empty() {
            "(none of SHADER_F16, SUBGROUP, EXPERIMENTAL_COOPERATIVE_MATRIX, TIMESTAMP_QUERY)"
                .to_string()
        } else {
            a.features.join(", ")
        };
        let rows: [(&str, String); 9] = [
            ("backend", a.backend.clone()),
            ("device type", a.device_type.clone()),
            ("driver", driver),
            ("max buffer", bytes(a.max_buffer_size)),
            (
                "max storage binding",
                bytes(a.max_storage_buffer_binding_size),
            ),
            (
                "workgroup storage",
                bytes(a.max_compute_workgroup_storage_size.into()),
            ),
            (
                "invocations/workgroup",
                a.max_compute_invocations_per_workgroup.to_string(),
            ),
            (
                "workgroups/dimension",
                a.max_compute_workgroups_per_dimension.to_string(),
            ),
            ("features", features),
        ];
        for (key, value) in rows {
            writeln!(out, "    {key:<22} {value}")?;
        }
    }
    Ok(())
}

/// `134217728` → `128 MiB (134217728 bytes)`; exact byte counts stay visible.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else if value.fract() == 0.0 {
        format!("{value} {} ({n} bytes)", UNITS[unit])
    } else {
        format!("{value:.2} {} ({n} bytes)", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str) -> AdapterSummary {
        AdapterSummary {
            name: name.into(),
            backend: "Vulkan".into(),
            device_type: "Cpu".into(),
            driver: "llvmpipe".into(),
            driver_info: "Mesa".into(),
            max_buffer_size: 1 << 31,
            max_storage_buffer_binding_size: 134_217_728,
            max_compute_workgroup_storage_size: 32768,
            max_compute_invocations_per_workgroup: 1024,
            max_compute_workgroups_per_dimension: 65535,
            features: vec!["TIMESTAMP_QUERY".into()],
        }
    }

    #[test]
    fn choice_follows_accrete_adapter() {
        let list = [adapter("NVIDIA H200"), adapter("llvmpipe (LLVM 15)")];
        assert_eq!(choose_adapter(&list, None), Choice::Best(0));
        assert_eq!(choose_adapter(&list, Some("LLVMpipe")).index(), Some(1));
        assert_eq!(
            choose_adapter(&list, Some("radeon")),
            Choice::NoMatch("radeon".into())
        );
        assert_eq!(choose_adapter(&[], Some("x")), Choice::None);
    }

    #[test]
    fn byte_counts_are_readable() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(32768), "32 KiB (32768 bytes)");
        assert_eq!(bytes(134_217_728), "128 MiB (134217728 bytes)");
        assert_eq!(bytes(1_500_000), "1.43 MiB (1500000 bytes)");
    }

    #[test]
    fn json_marks_the_selection() {
        let line = json_line(&adapter("llvmpipe"), 3, true);
        assert!(
            line.starts_with(r#"{"index":3,"selected":true,"name":"llvmpipe","#),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["index"], 3);
        assert_eq!(v["selected"], true);
        assert_eq!(v["name"], "llvmpipe");
        assert_eq!(v["features"][0], "TIMESTAMP_QUERY");
    }

    #[test]
    fn human_listing_marks_the_selection() {
        let list = [adapter("A"), adapter("B")];
        let mut out = Vec::new();
        write_human(&mut out, &list, &Choice::Matched(1, "b".into())).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  [0] A\n"), "{text}");
        assert!(text.contains("* [1] B\n"), "{text}");
        assert!(text.contains("128 MiB"), "{text}");
    }
}
