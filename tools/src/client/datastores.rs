//! `arca datastore list|gc|verify|set` through the server.

use anyhow::{anyhow, Result};
use arca_model::api::{Datastore, DatastoreSettings, GcNow, Task, VerifyNow};
use arca_model::DatastoreId;

use super::{show, tasks::follow, Api};
use crate::{Cli, DatastoreCmd};

fn datastore_id(api: &Api, name: &str) -> Result<DatastoreId> {
    let all: Vec<Datastore> = api.get("/datastores", "a list of datastores")?;
    all.iter()
        .find(|d| d.name == name)
        .map(|d| d.id)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|d| d.name.as_str()).collect();
            anyhow!(
                "no datastore named {name:?} on the server (there are: {})",
                names.join(", ")
            )
        })
}

pub fn datastore(cli: &Cli, c: &DatastoreCmd) -> Result<u8> {
    let api = Api::new(cli)?;
    match c {
        DatastoreCmd::List => {
            let all: Vec<Datastore> = api.get("/datastores", "a list of datastores")?;
            show(cli, &all, |all| {
                let mut t = crate::table::Table::new(&[
                    "ID",
                    "NAME",
                    "USED",
                    "GC",
                    "VERIFY",
                    "RE-VERIFY AFTER",
                ])
                .right(&[0, 2]);
                for d in all {
                    t.row(vec![
                        d.id.to_string(),
                        d.name.clone(),
                        crate::units::human(u64::try_from(d.bytes_used).unwrap_or(0)),
                        d.gc_schedule.clone(),
                        d.verify_schedule.clone(),
                        format!("{} days", d.verify_max_age_days),
                    ]);
                }
                t.render()
            })
        }
        DatastoreCmd::Gc { name, wait, grace } => {
            let id = datastore_id(&api, name)?;
            let req = GcNow {
                grace_seconds: grace
                    .as_deref()
                    .map(|g| crate::units::parse_duration(g).map(|d| d.as_secs()))
                    .transpose()?,
            };
            let t: Task = api.post(&format!("/datastores/{id}/gc"), &req, "a task")?;
            if *wait {
                return follow(cli, &api, t.id);
            }
            show(cli, &t, |t| {
                format!("gc of datastore {name} queued as task {}", t.id)
            })
        }
        DatastoreCmd::Verify { name, wait, all } => {
            let id = datastore_id(&api, name)?;
            let req = VerifyNow {
                all: *all,
                read_data_percent: None,
            };
            let t: Task = api.post(&format!("/datastores/{id}/verify"), &req, "a task")?;
            if *wait {
                return follow(cli, &api, t.id);
            }
            show(cli, &t, |t| {
                format!("verify of datastore {name} queued as task {}", t.id)
            })
        }
        DatastoreCmd::Set {
            name,
            gc_schedule,
            verify_schedule,
            verify_max_age_days,
        } => {
            let req = DatastoreSettings {
                gc_schedule: gc_schedule.clone(),
                verify_schedule: verify_schedule.clone(),
                verify_max_age_days: *verify_max_age_days,
            };
            if req == DatastoreSettings::default() {
                return Err(crate::usage::nothing_to_change(&["datastore", "set"], &[]));
            }
            let id = datastore_id(&api, name)?;
            let d: Datastore = api.patch(&format!("/datastores/{id}"), &req, "a datastore")?;
            show(cli, &d, |d| {
                format!(
                    "datastore {name}: gc {}, verify {}, re-verify after {} days",
                    d.gc_schedule, d.verify_schedule, d.verify_max_age_days
                )
            })
        }
        _ => Err(anyhow!(
            "this datastore command works on a local datastore, not through the server"
        )),
    }
}
