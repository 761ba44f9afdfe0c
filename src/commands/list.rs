//! `instancectl list`: the instances in start order, as a table or JSON.

use serde::Serialize;

use crate::cli::ListArgs;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::instance::Instance;

#[derive(Serialize)]
struct Row {
    name: String,
    group: Option<String>,
    role: Option<String>,
    enabled: bool,
    config_directory: String,
    queue_directory: String,
    data_directory: String,
    listen: Vec<String>,
    master_pid: Option<i32>,
}

impl Row {
    fn of(instance: &Instance) -> Row {
        Row {
            name: instance.name.clone(),
            group: instance.group.clone(),
            role: instance
                .role()
                .map(|r| r.to_string())
                .or_else(|| instance.is_primary().then(|| "primary".to_string())),
            enabled: instance.enabled,
            config_directory: instance.config_directory.display().to_string(),
            queue_directory: instance.queue_directory.display().to_string(),
            data_directory: instance.data_directory.display().to_string(),
            listen: instance.listeners.iter().map(|l| l.to_string()).collect(),
            master_pid: instance.running_master(),
        }
    }
}

pub fn run(host: &Host, args: &ListArgs) -> Result<()> {
    let rows: Vec<Row> = host.instances()?.iter().map(Row::of).collect();
    if args.json {
        let text = serde_json::to_string_pretty(&rows)
            .map_err(|e| Error::failed(format!("cannot encode JSON: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header([
        "NAME", "GROUP", "ROLE", "ENABLED", "LISTEN", "MASTER", "CONFIG", "QUEUE", "DATA",
    ]);
    for row in rows {
        table.add_row([
            row.name,
            row.group.unwrap_or_else(|| "-".into()),
            row.role.unwrap_or_else(|| "-".into()),
            if row.enabled { "yes" } else { "no" }.to_string(),
            if row.listen.is_empty() {
                "-".into()
            } else {
                row.listen.join(",")
            },
            row.master_pid.map_or("-".into(), |p| p.to_string()),
            row.config_directory,
            row.queue_directory,
            row.data_directory,
        ]);
    }
    println!("{}", table.trim_fmt());
    Ok(())
}
