//! `instancectl list`: the instances in start order, as a table (`-o wide`: with their
//! directories) or JSON.

use serde::Serialize;

use crate::cli::ListArgs;
use crate::error::Result;
use crate::host::Host;
use crate::instance::Instance;
use crate::manager::ManagerView;
use crate::manager::ServiceManager;
use crate::output::{self, Format, Schema};
use crate::postfix::pid_file::LockTable;

#[derive(Serialize)]
struct Row {
    name: String,
    group: Option<String>,
    role: Option<String>,
    enabled: bool,
    config_directory: String,
    /// `null` for a broken instance.
    queue_directory: Option<String>,
    data_directory: Option<String>,
    /// Why the instance cannot be managed, and the fix; `null` when it can.
    broken: Option<String>,
    listen: Vec<String>,
    master_pid: Option<i32>,
    /// The service manager's view of the instance's job (as `status` shows it), when
    /// the manager has jobs to tell of (launchd, systemd).
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<ManagerView>,
}

impl Row {
    fn of(instance: &Instance, view: ManagerView, locks: Option<&LockTable>) -> Row {
        let job = view.summary.is_some().then_some(view);
        Row {
            name: instance.name.clone(),
            group: instance.group.clone(),
            role: instance.role_name(),
            enabled: instance.enabled,
            config_directory: instance.config_directory.display().to_string(),
            queue_directory: shown(&instance.queue_directory),
            data_directory: shown(&instance.data_directory),
            broken: instance.broken.clone(),
            listen: instance.listeners.iter().map(|l| l.to_string()).collect(),
            master_pid: instance.running_master_in(locks),
            job,
        }
    }
}

fn shown(dir: &Option<std::path::PathBuf>) -> Option<String> {
    dir.as_ref().map(|d| d.display().to_string())
}

pub fn run(host: &Host, manager: &dyn ServiceManager, args: &ListArgs) -> Result<()> {
    let selected = host.select(&args.instances.selection_or_all())?;
    // One question to the manager for all of them (launchd: one print-disabled).
    let views = manager.views(host, &selected);
    let locks = LockTable::read();
    let rows: Vec<Row> = selected
        .iter()
        .zip(views)
        .map(|(i, v)| Row::of(i, v, locks.as_ref()))
        .collect();
    let with_jobs = rows.iter().any(|r| r.job.is_some());
    let format = args.output.format();
    if format == Format::Json {
        #[derive(Serialize)]
        struct Listing {
            instances: Vec<Row>,
        }
        return output::print_json(Schema::LIST, &Listing { instances: rows });
    }
    let wide = format == Format::Wide;
    let mut table = output::table(wide);
    let mut header = vec!["NAME", "GROUP", "ROLE", "ENABLED", "LISTEN", "MASTER"];
    if wide {
        header.extend(["CONFIG", "QUEUE", "DATA"]);
    }
    if with_jobs {
        header.push("JOB");
    }
    table.set_header(header);
    let mut notes = Vec::new();
    for row in rows {
        if let Some(why) = &row.broken {
            notes.push(format!("{}: broken: {why}", row.name));
        }
        let job = row.job.as_ref().and_then(|j| j.summary.clone());
        let mut cells = vec![
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
        ];
        if wide {
            cells.extend([
                row.config_directory,
                row.queue_directory.unwrap_or_else(|| "?".into()),
                row.data_directory.unwrap_or_else(|| "?".into()),
            ]);
        }
        if with_jobs {
            cells.push(job.unwrap_or_else(|| "-".into()));
        }
        table.add_row(cells.iter().map(output::cell));
    }
    output::line(output::render(&table));
    if !notes.is_empty() {
        output::line(format_args!("\n{}", notes.join("\n")));
    }
    Ok(())
}
