//! `accrete devices`: every adapter wgpu can see and the CPU backend, with the limits and
//! features accrete cares about, marking the device `Gpu::new` would open (core's
//! `choose_device`, the same rule device creation follows).

use crate::{environment_help, Failure};
use accrete::gpu::{choose_device, AdapterChoice as Choice, DeviceChoice};
use accrete::{list_adapters, AdapterSummary, GpuOptions};
use clap::Args;
use serde::Serialize;
use std::io::{self, Write};

pub const EXAMPLES: &str = concat!(
    "Examples:
  accrete devices                        human-readable list, best adapter first, the CPU backend last
  accrete devices --json | grep '\"selected\":true'   the device accrete picks, as JSON
  accrete --backend gpu devices          which adapter a GPU-only run would take
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
    let mut adapters = pollster::block_on(list_adapters(&options));
    let device = choose_device(&adapters, &options)?;
    if let DeviceChoice::Adapter(Choice::None) = device {
        // Let core build its "no adapter" error, which carries the installation hint.
        pollster::block_on(accrete::Gpu::with_options(options.clone()))?;
    }
    let (choice, selected) = match &device {
        DeviceChoice::Adapter(c) => (c.clone(), c.index()),
        DeviceChoice::Cpu(_) => (Choice::None, Some(adapters.len())),
    };
    adapters.push(accrete::Gpu::cpu().summary().clone());
    let mut out = io::stdout().lock();
    if args.json {
        for (i, a) in adapters.iter().enumerate() {
            writeln!(out, "{}", json_line(a, i, selected == Some(i)))?;
        }
    } else {
        write_human(&mut out, &adapters, &choice, selected, &device)?;
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

/// The listing: `devices` is the adapters then the CPU backend (last); `selected` the index
/// accrete opens.
fn write_human(
    out: &mut impl Write,
    devices: &[AdapterSummary],
    choice: &Choice,
    selected: Option<usize>,
    device: &DeviceChoice,
) -> io::Result<()> {
    let how = match (device, choice) {
        (DeviceChoice::Cpu(why), _) => format!("* marks the device accrete uses: the CPU backend, because {why}"),
        (_, Choice::Best(_)) => "* marks the device accrete uses (the first; set ACCRETE_ADAPTER to pick another, ACCRETE_BACKEND=cpu for the CPU backend)".to_string(),
        (_, Choice::Matched(_, w)) => format!("* marks the device accrete uses (the first whose name contains ACCRETE_ADAPTER={w:?})"),
        (_, Choice::NoMatch(w)) => format!("no adapter matches ACCRETE_ADAPTER={w:?}"),
        (_, Choice::None) => String::new(),
    };
    let n = devices.len().saturating_sub(1);
    let plural = if n == 1 { "" } else { "s" };
    writeln!(
        out,
        "{n} adapter{plural}, best first, and the CPU backend; {how}"
    )?;
    for (i, a) in devices.iter().enumerate() {
        let mark = if selected == Some(i) { '*' } else { ' ' };
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
    use accrete::gpu::choose_adapter;

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
        let list = [
            adapter("A"),
            adapter("B"),
            accrete::Gpu::cpu().summary().clone(),
        ];
        let choice = Choice::Matched(1, "b".into());
        let device = DeviceChoice::Adapter(choice.clone());
        let mut out = Vec::new();
        write_human(&mut out, &list, &choice, Some(1), &device).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("  [0] A\n"), "{text}");
        assert!(text.contains("* [1] B\n"), "{text}");
        assert!(text.contains("128 MiB"), "{text}");
        assert!(text.contains("  [2] accrete CPU backend"), "{text}");
        assert!(
            text.starts_with("2 adapters, best first, and the CPU backend"),
            "{text}"
        );
    }

    #[test]
    fn auto_prefers_the_cpu_backend_to_a_software_adapter() {
        use accrete::gpu::choose_device_with as pick;
        use accrete::BackendChoice::{Auto, Cpu, Gpu};
        let software = [adapter("llvmpipe (LLVM 15)")];
        let mut hardware = adapter("NVIDIA H200");
        hardware.device_type = "DiscreteGpu".into();
        let mut swiftshader = adapter("Google SwiftShader Device (Subzero)");
        swiftshader.device_type = "Other".into();
        assert!(matches!(pick(&software, None, Auto), DeviceChoice::Cpu(_)));
        assert!(matches!(
            pick(&[swiftshader], None, Auto),
            DeviceChoice::Cpu(_)
        ));
        assert!(matches!(pick(&[], None, Auto), DeviceChoice::Cpu(_)));
        let both = [hardware.clone(), software[0].clone()];
        assert_eq!(
            pick(&both, None, Auto),
            DeviceChoice::Adapter(Choice::Best(0))
        );
        assert_eq!(
            pick(&software, Some("llvm"), Auto),
            DeviceChoice::Adapter(Choice::Matched(0, "llvm".into()))
        );
        assert_eq!(
            pick(&software, None, Gpu),
            DeviceChoice::Adapter(Choice::Best(0))
        );
        assert!(matches!(pick(&[hardware], None, Cpu), DeviceChoice::Cpu(_)));
    }
}
