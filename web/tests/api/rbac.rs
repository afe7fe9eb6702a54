//! The RBAC expectation table: every route × every role × own and other
//! project, written out by hand (not derived from `auth::allows`), walked
//! against the router. A route in the OpenAPI document without a row
//! fails the test, and so does a row without a route.
//!
//! Columns, each a user with one role binding:
//!   ADM*  admin of all projects        ADM  admin of project 1 (own)
//!   OPR   operator of project 1        RST  restore-only of project 1
//!   AUD   auditor of project 1         AUD* auditor of all projects
//! "own" acts on objects of project 1, "other" on objects of project 2.
//! Datastores belong to no project: both act on the same one.
//! For users and tokens, "own" is the caller (or the caller's token) and
//! "other" is another user (or that user's token).

use arca_catalog::{
    DatastoreId, ExportId, ExportProtocol, LogLevel, NewExport, NewTask, NodeId, PolicyId,
    ProjectId, RestorePoint, Retention, Role, RoleBinding, SourceId, SourceKind, TaskId, TaskKind,
    TokenKind, UserId,
};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use super::{setup, token_for, T};

/// Expected outcome class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum E {
    /// 2xx.
    Y,
    /// 403 forbidden.
    F,
    /// 409 conflict (an admin deleting themself).
    C,
    /// 404: the object exists in a project the caller cannot see, and
    /// the answer must not tell it from one that does not exist.
    N,
    /// 422: the body names an object of a project the caller cannot see,
    /// answered as a name that does not exist.
    U,
}
use E::*;

type Row = (&'static str, &'static str, [E; 6], [E; 6]);

const ALL: [E; 6] = [Y, Y, Y, Y, Y, Y];
const GLOBAL_ADMIN: [E; 6] = [Y, F, F, F, F, F];
const MANAGE_OWN: [E; 6] = [Y, Y, Y, F, F, F];
const RESTORE_OWN: [E; 6] = [Y, Y, Y, Y, F, F];
const AUDIT: [E; 6] = [Y, F, F, F, F, Y];
/// Another project's object: hidden from project members (404, as if it
/// did not exist), seen by global readers (who may not change it: 403).
const HIDDEN_READ: [E; 6] = [Y, N, N, N, N, Y];
const HIDDEN_ADMIN: [E; 6] = [Y, N, N, N, N, F];
/// Another user's token: no one lists it, admins of all projects may act
/// on it; to everyone else it does not exist.
const OTHERS_TOKEN: [E; 6] = [Y, N, N, N, N, N];
/// Admins of all projects only; the test server's keys are given in
/// memory, which cannot rotate (409; rotations of key files are tested
/// with a real server in tests/server/keys.rs).
const IN_MEMORY_KEY: [E; 6] = [C, F, F, F, F, F];
/// Another project's object named in the body: unknown to project members.
const HIDDEN_NAMED: [E; 6] = [Y, U, U, U, U, F];

#[rustfmt::skip]
const TABLE: &[Row] = &[
    // method    path                                     own            other
    ("get",    "/healthz",                                ALL,           ALL),
    ("get",    "/metrics",                                ALL,           ALL),
    ("get",    "/api/v1/openapi.json",                    ALL,           ALL),
    ("post",   "/api/v1/auth/login",                      ALL,           ALL),
    ("post",   "/api/v1/auth/logout",                     ALL,           ALL),
    ("post",   "/api/v1/auth/password",                   ALL,           ALL),
    ("get",    "/api/v1/me",                              ALL,           ALL),
    ("get",    "/api/v1/users",                           GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("post",   "/api/v1/users",                           GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("get",    "/api/v1/users/{id}",                      ALL,           GLOBAL_ADMIN),
    ("patch",  "/api/v1/users/{id}",                      [C, F, F, F, F, F], GLOBAL_ADMIN),
    ("delete", "/api/v1/users/{id}",                      [C, F, F, F, F, F], GLOBAL_ADMIN),
    ("post",   "/api/v1/users/{id}/password",             GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("get",    "/api/v1/tokens",                          ALL,           ALL),
    ("post",   "/api/v1/tokens",                          ALL,           ALL),
    ("patch",  "/api/v1/tokens/{id}",                     ALL,           OTHERS_TOKEN),
    ("delete", "/api/v1/tokens/{id}",                     ALL,           OTHERS_TOKEN),
    ("get",    "/api/v1/s3-keys",                         ALL,           ALL),
    ("post",   "/api/v1/s3-keys",                         ALL,           ALL),
    ("delete", "/api/v1/s3-keys/{id}",                    ALL,           OTHERS_TOKEN),
    ("get",    "/api/v1/status",                          ALL,           ALL),
    ("get",    "/api/v1/settings",                        GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("patch",  "/api/v1/settings",                        GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("post",   "/api/v1/keys/{name}/rotate",              IN_MEMORY_KEY, IN_MEMORY_KEY),
    ("get",    "/api/v1/projects",                        ALL,           ALL),
    ("post",   "/api/v1/projects",                        GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("get",    "/api/v1/nodes",                           ALL,           ALL),
    ("post",   "/api/v1/nodes",                           GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("patch",  "/api/v1/nodes/{id}",                      GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("delete", "/api/v1/nodes/{id}",                      GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("get",    "/api/v1/datastores",                      ALL,           ALL),
    ("patch",  "/api/v1/datastores/{id}",                 GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("post",   "/api/v1/datastores/{id}/gc",              GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("post",   "/api/v1/datastores/{id}/verify",          GLOBAL_ADMIN,  GLOBAL_ADMIN),
    ("get",    "/api/v1/sources",                         ALL,           ALL),
    ("post",   "/api/v1/sources",                         MANAGE_OWN,    GLOBAL_ADMIN),
    ("get",    "/api/v1/sources/{id}",                    ALL,           HIDDEN_READ),
    ("patch",  "/api/v1/sources/{id}",                    MANAGE_OWN,    HIDDEN_ADMIN),
    ("delete", "/api/v1/sources/{id}",                    MANAGE_OWN,    HIDDEN_ADMIN),
    ("post",   "/api/v1/sources/{id}/backup",             MANAGE_OWN,    HIDDEN_ADMIN),
    ("get",    "/api/v1/hypervisors",                     ALL,           ALL),
    ("post",   "/api/v1/hypervisors",                     MANAGE_OWN,    GLOBAL_ADMIN),
    ("get",    "/api/v1/hypervisors/{id}",                ALL,           HIDDEN_READ),
    ("delete", "/api/v1/hypervisors/{id}",                MANAGE_OWN,    HIDDEN_ADMIN),
    ("post",   "/api/v1/hypervisors/{id}/sync",           MANAGE_OWN,    HIDDEN_ADMIN),
    ("get",    "/api/v1/policies",                        ALL,           ALL),
    ("post",   "/api/v1/policies",                        MANAGE_OWN,    GLOBAL_ADMIN),
    ("get",    "/api/v1/policies/{id}",                   ALL,           HIDDEN_READ),
    ("patch",  "/api/v1/policies/{id}",                   MANAGE_OWN,    HIDDEN_ADMIN),
    ("delete", "/api/v1/policies/{id}",                   MANAGE_OWN,    HIDDEN_ADMIN),
    ("get",    "/api/v1/policies/{id}/preview",           ALL,           HIDDEN_READ),
    ("post",   "/api/v1/policies/{id}/prune",             MANAGE_OWN,    HIDDEN_ADMIN),
    ("get",    "/api/v1/tasks",                           ALL,           ALL),
    ("get",    "/api/v1/tasks/{id}",                      ALL,           HIDDEN_READ),
    ("get",    "/api/v1/tasks/{id}/logs",                 ALL,           HIDDEN_READ),
    ("post",   "/api/v1/tasks/{id}/cancel",               MANAGE_OWN,    HIDDEN_ADMIN),
    ("post",   "/api/v1/tasks/{id}/retry",                MANAGE_OWN,    HIDDEN_ADMIN),
    ("get",    "/api/v1/reports/protection",              ALL,           HIDDEN_READ),
    ("get",    "/api/v1/reports/storage",                 ALL,           ALL),
    ("get",    "/api/v1/reports/tasks",                   ALL,           HIDDEN_READ),
    ("get",    "/api/v1/restore-points",                  ALL,           ALL),
    ("get",    "/api/v1/restore-points/{id}",             ALL,           HIDDEN_READ),
    ("get",    "/api/v1/restore-points/{id}/tree",        ALL,           HIDDEN_READ),
    ("get",    "/api/v1/restore-points/{id}/files",       ALL,           HIDDEN_READ),
    ("get",    "/api/v1/restore-points/search",           ALL,           ALL),
    ("patch",  "/api/v1/restore-points/{id}",             MANAGE_OWN,    HIDDEN_ADMIN),
    ("delete", "/api/v1/restore-points/{id}",             MANAGE_OWN,    HIDDEN_ADMIN),
    ("post",   "/api/v1/restore-points/{id}/restore",     RESTORE_OWN,   HIDDEN_ADMIN),
    ("post",   "/api/v1/restore-points/{id}/import",      RESTORE_OWN,   HIDDEN_ADMIN),
    ("get",    "/api/v1/exports",                         ALL,           ALL),
    ("post",   "/api/v1/exports",                         RESTORE_OWN,   HIDDEN_NAMED),
    ("get",    "/api/v1/exports/{id}",                    ALL,           HIDDEN_READ),
    ("delete", "/api/v1/exports/{id}",                    RESTORE_OWN,   HIDDEN_ADMIN),
    ("patch",  "/api/v1/exports/{id}",                    RESTORE_OWN,   HIDDEN_ADMIN),
    ("get",    "/api/v1/audit",                           AUDIT,         AUDIT),
];

const PW: &str = "password123";

/// One column: its user's id, name and API token.
struct Caller {
    id: UserId,
    name: String,
    token: String,
}

/// Objects of one project that the requests act on.
struct Objects {
    source: SourceId,
    policy: PolicyId,
    task: TaskId,
    restore_point: String,
    image: String,
    export: ExportId,
    /// A hypervisor `hv-<project>` and a libvirt restore point.
    hypervisor: arca_model::HypervisorId,
    vm: String,
}

/// A hypervisor of `project` with a key sealed as the test server seals.
fn add_hypervisor(
    c: &arca_catalog::Catalog,
    name: &str,
    project: ProjectId,
) -> arca_model::HypervisorId {
    let b = arca_web::s3_secrets::SecretBox::from_key(&super::CREDENTIALS_KEY).unwrap();
    let sealed = b
        .seal(
            &arca_web::inventory::key_aad(project, name),
            b"-----BEGIN OPENSSH PRIVATE KEY-----",
        )
        .unwrap();
    c.add_hypervisor(
        name,
        project,
        NodeId(1),
        "kvm",
        "root",
        &sealed,
        None,
        "ssh",
    )
    .unwrap()
    .id
}

struct World<'a> {
    t: &'a T,
    callers: Vec<Caller>,
    /// Another user, for "other" on user and token routes.
    bystander: UserId,
    objects: [Objects; 2],
    n: u32,
}

fn restore_point(id: String, project: ProjectId, kind: SourceKind) -> RestorePoint {
    RestorePoint {
        id: id.parse().unwrap(),
        datastore_id: DatastoreId(1),
        source_name: format!("rp-{project}"),
        project_id: project,
        kind,
        time: 1,
        ..Default::default()
    }
}

fn backup_task(project: ProjectId, source: SourceId) -> NewTask {
    NewTask {
        project_id: project,
        source_id: Some(source),
        datastore_id: Some(DatastoreId(1)),
        max_attempts: 1,
        created_by: "test".into(),
        ..Default::default()
    }
}

impl World<'_> {
    fn new(t: &T) -> World<'_> {
        let c = &t.state.catalog;
        let bind = |role, project| {
            vec![RoleBinding {
                role,
                project_id: project,
            }]
        };
        let mut callers = vec![Caller {
            id: UserId(1),
            name: "admin".into(),
            token: t.admin.clone(),
        }];
        for (name, roles) in [
            ("adm-own", bind(Role::Admin, Some(ProjectId(1)))),
            ("opr-own", bind(Role::Operator, Some(ProjectId(1)))),
            ("rst-own", bind(Role::RestoreOnly, Some(ProjectId(1)))),
            ("aud-own", bind(Role::Auditor, Some(ProjectId(1)))),
            ("aud-all", bind(Role::Auditor, None)),
        ] {
            let token = token_for(c, name, &roles);
            let id = c.user_by_name(name).unwrap().unwrap().id;
            callers.push(Caller {
                id,
                name: name.into(),
                token,
            });
        }
        let bystander = c
            .add_user("bystander", "x", &bind(Role::Operator, Some(ProjectId(2))))
            .unwrap()
            .id;
        let objects = [ProjectId(1), ProjectId(2)].map(|p| {
            let source = c
                .add_source(
                    &format!("src-{p}"),
                    SourceKind::Files,
                    "/srv",
                    NodeId(1),
                    p,
                    &[],
                    &json!({}),
                    None,
                )
                .unwrap()
                .id;
            let policy = c
                .add_policy(
                    &format!("pol-{p}"),
                    p,
                    "daily",
                    None,
                    &Default::default(),
                    DatastoreId(1),
                    0,
                    None,
                    &[],
                    None,
                )
                .unwrap()
                .id;
            let task = c.add_task(&backup_task(p, source)).unwrap().unwrap().id;
            c.add_task_log(task, LogLevel::Info, "hello").unwrap();
            let rp = format!("{p:02}{}", "a".repeat(62));
            let image = format!("1{p}{}", "b".repeat(62));
            c.add_restore_point(&restore_point(rp.clone(), p, SourceKind::Files))
                .unwrap();
            c.add_restore_point(&restore_point(image.clone(), p, SourceKind::Image))
                .unwrap();
            let export = c.add_export(&new_export(&image, p)).unwrap().id;
            let vm = format!("2{p}{}", "c".repeat(62));
            c.add_restore_point(&restore_point(vm.clone(), p, SourceKind::Libvirt))
                .unwrap();
            let hypervisor = add_hypervisor(c, &format!("hv-{p}"), p);
            Objects {
                hypervisor,
                vm,
                source,
                policy,
                task,
                restore_point: rp,
                image,
                export,
            }
        });
        World {
            t,
            callers,
            bystander,
            objects,
            n: 0,
        }
    }

    /// The concrete request for a row's cell: the URI and the body.
    /// Requests that use something up (delete, cancel, stop) get a fresh
    /// object; requests that create something get a fresh name.
    fn request(
        &mut self,
        path: &str,
        method: &str,
        col: usize,
        other: bool,
    ) -> (String, Option<Value>) {
        self.n += 1;
        let n = self.n;
        let c = self.t.state.catalog.clone();
        let p = ProjectId(if other { 2 } else { 1 });
        let o = &self.objects[usize::from(other)];
        let me = &self.callers[col];
        let user = if other { self.bystander } else { me.id };
        let name = format!("new-{n}");
        let with = |id: &dyn std::fmt::Display| path.replace("{id}", &id.to_string());
        match (method, path) {
            ("post", "/api/v1/auth/login") => (
                path.into(),
                Some(json!({"username": me.name, "password": PW})),
            ),
            ("post", "/api/v1/auth/password") => (
                path.into(),
                Some(json!({"current_password": PW, "new_password": PW})),
            ),
            ("post", "/api/v1/users") => (path.into(), Some(json!({"name": name, "password": PW}))),
            ("get", "/api/v1/users/{id}") => (with(&user), None),
            ("delete", "/api/v1/users/{id}") => {
                let id = if other {
                    c.add_user(&name, "x", &[]).unwrap().id
                } else {
                    me.id
                };
                (with(&id), None)
            }
            // The bystander keeps the role it has (operator of project 2).
            ("patch", "/api/v1/users/{id}") => (
                with(&user),
                Some(json!({"roles": [{"role": "operator", "project": 2}]})),
            ),
            ("post", "/api/v1/users/{id}/password") => {
                (with(&user), Some(json!({"new_password": PW})))
            }
            ("post", "/api/v1/tokens") => (path.into(), Some(json!({"name": name}))),
            ("patch", "/api/v1/tokens/{id}") => {
                let (_, hash) = arca_web::auth::new_secret();
                let tok = c
                    .add_token(Some(user), None, &name, TokenKind::Api, &hash, None)
                    .unwrap();
                (
                    with(&tok.id),
                    Some(json!({"name": format!("{name}-renamed")})),
                )
            }
            ("delete", "/api/v1/tokens/{id}") => {
                let (_, hash) = arca_web::auth::new_secret();
                let tok = c
                    .add_token(Some(user), None, &name, TokenKind::Api, &hash, None)
                    .unwrap();
                (with(&tok.id), None)
            }
            ("post", "/api/v1/s3-keys") => (path.into(), Some(json!({"description": name}))),
            ("delete", "/api/v1/s3-keys/{id}") => {
                let k = c
                    .add_s3_key(user, &format!("AKIATEST{n:012}"), b"sealed", &name)
                    .unwrap();
                (with(&k.id), None)
            }
            // Settings, nodes and datastores belong to no project: "own"
            // and "other" are the same.
            ("post", "/api/v1/keys/{name}/rotate") => (path.replace("{name}", "credentials"), None),
            ("patch", "/api/v1/settings") => (
                path.into(),
                Some(json!({"token_max_lifetime_s": 90 * 86_400})),
            ),
            ("patch", "/api/v1/nodes/{id}") => {
                (with(&1), Some(json!({"allow_block_devices": false})))
            }
            ("delete", "/api/v1/nodes/{id}") => {
                let node = c.add_node(&name, 1).unwrap();
                (with(&node.id), None)
            }
            ("patch", "/api/v1/datastores/{id}") => {
                (with(&1), Some(json!({"gc_schedule": "daily"})))
            }
            ("post", "/api/v1/datastores/{id}/gc") | ("post", "/api/v1/datastores/{id}/verify") => {
                // One gc or verify at a time: end the one a cell before queued.
                let kind: TaskKind = path.rsplit('/').next().unwrap_or_default().parse().unwrap();
                if let Some(t) = c.active_maintenance_task(DatastoreId(1), kind).unwrap() {
                    c.cancel_task(t).unwrap();
                }
                (with(&1), None)
            }
            ("post", "/api/v1/projects") | ("post", "/api/v1/nodes") => {
                (path.into(), Some(json!({"name": name})))
            }
            ("post", "/api/v1/sources") => (
                path.into(),
                Some(json!({"name": name, "kind": "files", "path": "/srv", "project": p})),
            ),
            ("get", "/api/v1/sources/{id}") | ("post", "/api/v1/sources/{id}/backup") => {
                (with(&o.source), None)
            }
            ("delete", "/api/v1/sources/{id}") => {
                let s = c
                    .add_source(
                        &name,
                        SourceKind::Files,
                        "/srv",
                        NodeId(1),
                        p,
                        &[],
                        &json!({}),
                        None,
                    )
                    .unwrap();
                (with(&s.id), None)
            }
            ("post", "/api/v1/policies") => (
                path.into(),
                Some(json!({"name": name, "schedule": "daily", "project": p})),
            ),
            ("patch", "/api/v1/sources/{id}") => (with(&o.source), Some(json!({"tags": [name]}))),
            ("get", "/api/v1/policies/{id}") | ("get", "/api/v1/policies/{id}/preview") => {
                (with(&o.policy), None)
            }
            ("patch", "/api/v1/policies/{id}") => (with(&o.policy), Some(json!({"priority": 5}))),
            // A prune queues a task per source of the policy (one at a
            // time): a fresh policy with a rule and a source each time.
            ("post", "/api/v1/policies/{id}/prune") => {
                let retention = Retention {
                    keep_last: 1,
                    ..Default::default()
                };
                let pol = c
                    .add_policy(
                        &name,
                        p,
                        "daily",
                        None,
                        &retention,
                        DatastoreId(1),
                        0,
                        None,
                        &[],
                        None,
                    )
                    .unwrap();
                c.add_source(
                    &name,
                    SourceKind::Files,
                    "/srv",
                    NodeId(1),
                    p,
                    &[],
                    &json!({}),
                    Some(pol.id),
                )
                .unwrap();
                (with(&pol.id), None)
            }
            ("delete", "/api/v1/policies/{id}") => {
                let pol = c
                    .add_policy(
                        &name,
                        p,
                        "daily",
                        None,
                        &Default::default(),
                        DatastoreId(1),
                        0,
                        None,
                        &[],
                        None,
                    )
                    .unwrap();
                (with(&pol.id), None)
            }
            ("get", "/api/v1/tasks/{id}") | ("get", "/api/v1/tasks/{id}/logs") => {
                (with(&o.task), None)
            }
            ("post", "/api/v1/tasks/{id}/cancel") => {
                let t = c.add_task(&backup_task(p, o.source)).unwrap().unwrap();
                (with(&t.id), None)
            }
            // A cancelled task, retried.
            ("post", "/api/v1/tasks/{id}/retry") => {
                let t = c.add_task(&backup_task(p, o.source)).unwrap().unwrap();
                c.cancel_task(t.id).unwrap();
                (with(&t.id), None)
            }
            // A report of one project, or of one source (by name).
            ("get", "/api/v1/reports/protection") => (format!("{path}?project={p}"), None),
            ("get", "/api/v1/reports/tasks") => (format!("{path}?source=src-{p}&format=csv"), None),
            ("get", "/api/v1/restore-points/{id}") => (with(&o.restore_point), None),
            ("get", "/api/v1/restore-points/{id}/tree") => (
                format!("{}?path=/dir&recursive=true", with(&o.restore_point)),
                None,
            ),
            ("get", "/api/v1/restore-points/{id}/files") => {
                (format!("{}?path=dir/a", with(&o.restore_point)), None)
            }
            ("get", "/api/v1/restore-points/search") => {
                (format!("{path}?pattern=*&source=rp-{p}"), None)
            }
            ("patch", "/api/v1/restore-points/{id}") => (
                with(&o.restore_point),
                Some(json!({"protected": true, "note": name})),
            ),
            // Deleting queues a forget of it: a fresh one each time.
            ("delete", "/api/v1/restore-points/{id}") => {
                let id = format!("f{n:063x}");
                c.add_restore_point(&restore_point(id.clone(), p, SourceKind::Files))
                    .unwrap();
                (with(&id), None)
            }
            ("post", "/api/v1/hypervisors") => (
                path.into(),
                Some(json!({
                    "name": name, "address": "kvm", "user": "root", "project": p,
                    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n",
                })),
            ),
            ("get", "/api/v1/hypervisors/{id}") | ("post", "/api/v1/hypervisors/{id}/sync") => {
                (with(&o.hypervisor), None)
            }
            ("delete", "/api/v1/hypervisors/{id}") => (with(&add_hypervisor(&c, &name, p)), None),
            ("post", "/api/v1/restore-points/{id}/import") => (
                with(&o.vm),
                Some(json!({"hypervisor": format!("hv-{p}"), "dir": "/var/lib/libvirt/images"})),
            ),
            ("post", "/api/v1/restore-points/{id}/restore") => {
                (with(&o.restore_point), Some(json!({"target": "/tmp/r"})))
            }
            ("post", "/api/v1/exports") => (path.into(), Some(json!({"restore_point": o.image}))),
            ("get", "/api/v1/exports/{id}") => (with(&o.export), None),
            ("patch", "/api/v1/exports/{id}") => (with(&o.export), Some(json!({"ttl": "1h"}))),
            ("delete", "/api/v1/exports/{id}") => {
                let e = c.add_export(&new_export(&o.image, p)).unwrap();
                (with(&e.id), None)
            }
            (_, path) if !path.contains('{') => (path.into(), None),
            (m, path) => panic!("the table walker does not know how to call {m} {path}"),
        }
    }
}

fn new_export(rp: &str, project: ProjectId) -> NewExport {
    NewExport {
        restore_point_id: rp.parse().unwrap(),
        datastore_id: DatastoreId(1),
        node_id: NodeId(1),
        project_id: project,
        protocol: ExportProtocol::Nbd,
        writable: false,
        ttl_seconds: 3600,
        created_by: "test".into(),
        allow: Vec::new(),
    }
}

#[tokio::test]
async fn rbac_table_covers_every_route_and_holds() {
    let t = setup();
    // Every route of the OpenAPI document has exactly one row, and every
    // row is a documented route.
    let mut documented: Vec<(&str, &str)> = arca_web::openapi::ROUTES
        .iter()
        .map(|r| (r.method, r.path))
        .collect();
    let mut rows: Vec<(&str, &str)> = TABLE.iter().map(|r| (r.0, r.1)).collect();
    documented.sort();
    rows.sort();
    let missing: Vec<_> = documented.iter().filter(|r| !rows.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the RBAC table: {missing:?}"
    );
    let extra: Vec<_> = rows.iter().filter(|r| !documented.contains(r)).collect();
    assert!(
        extra.is_empty(),
        "rows for routes that do not exist: {extra:?}"
    );
    let mut dedup = rows.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), rows.len(), "a route has two rows");

    let mut w = World::new(&t);
    let mut cells = 0;
    let mut wrong = Vec::new();
    for (method, path, own, other) in TABLE {
        for (is_other, expect) in [(false, own), (true, other)] {
            for (col, want) in expect.iter().enumerate() {
                let (uri, body) = w.request(path, method, col, is_other);
                let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                // Signing out revokes the token it is made with: a new
                // session of the caller each time.
                let token = if *path == "/api/v1/auth/logout" {
                    let (secret, hash) = arca_web::auth::new_secret();
                    t.state
                        .catalog
                        .add_token(
                            Some(w.callers[col].id),
                            None,
                            "session",
                            TokenKind::Session,
                            &hash,
                            Some(arca_catalog::now() + 3600),
                        )
                        .unwrap();
                    secret
                } else {
                    w.callers[col].token.clone()
                };
                let (s, v) = t.call(m, &uri, Some(&token), body).await;
                let ok = match want {
                    Y => s.is_success(),
                    F => s == StatusCode::FORBIDDEN && v["error"] == "forbidden",
                    C => s == StatusCode::CONFLICT,
                    N => s == StatusCode::NOT_FOUND && v["error"] == "not_found",
                    U => s == StatusCode::UNPROCESSABLE_ENTITY && v["error"] == "invalid",
                };
                if !ok {
                    wrong.push(format!(
                        "{method} {path} ({}) as {}: want {want:?}, got {s} {v}",
                        if is_other { "other" } else { "own" },
                        w.callers[col].name
                    ));
                }
                cells += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(cells, TABLE.len() * 12);
}
