//! The process's memory, threads and open files, read from /proc when
//! scraped (absent where there is no /proc).

use super::series;

/// Sets the process gauges in the current recorder.
pub fn record() {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(kib) = field("VmRSS:") {
            ::metrics::gauge!(series::PROCESS_RESIDENT_MEMORY).set(kib * 1024.0);
        }
        if let Some(threads) = field("Threads:") {
            ::metrics::gauge!(series::PROCESS_THREADS).set(threads);
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        ::metrics::gauge!(series::PROCESS_OPEN_FDS).set(fds.count() as f64);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_figures_are_read() {
        let text = super::super::render(super::record);
        for name in [
            "process_resident_memory_bytes ",
            "process_threads ",
            "process_open_fds ",
        ] {
            let value: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name}in {text}"))
                .parse()
                .unwrap();
            assert!(value >= 1.0, "{name}{value}");
        }
    }
}
