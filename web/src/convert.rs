//! The catalog's records as the API shows them: one conversion per record
//! kind, from `arca_catalog`'s record to its body in `arca_model::api`
//! (whose JSON is the API's, pinned by the model's unit tests). Handlers
//! answer with these bodies, never with a catalog record or `json!`.
//!
//! A few bodies carry more than the record, and the handler fills it in
//! after the conversion: a node's `effective_restore_roots`
//! (`routes::nodes`), a token's `state` (`routes::tokens`), and what an
//! export shows to whom (`routes::exports::view`).

use arca_catalog as catalog;
use arca_model::api;

/// A catalog record's API body (also the records in notifications).
pub trait ToApi {
    /// The body.
    type Api;
    /// The record as the API shows it.
    fn to_api(self) -> Self::Api;
}

/// Every record of a list, converted.
pub fn all<T: ToApi>(list: Vec<T>) -> Vec<T::Api> {
    list.into_iter().map(ToApi::to_api).collect()
}

impl ToApi for catalog::Project {
    type Api = api::Project;
    fn to_api(self) -> api::Project {
        api::Project {
            id: self.id,
            name: self.name,
        }
    }
}

impl ToApi for catalog::RoleBinding {
    type Api = api::RoleBinding;
    fn to_api(self) -> api::RoleBinding {
        api::RoleBinding {
            role: self.role,
            project_id: self.project_id,
        }
    }
}

impl ToApi for catalog::User {
    type Api = api::User;
    /// Never the password hash.
    fn to_api(self) -> api::User {
        api::User {
            id: self.id,
            name: self.name,
            disabled: self.disabled,
            roles: all(self.roles),
            created_at: self.created_at,
        }
    }
}

impl ToApi for catalog::Token {
    type Api = api::Token;
    /// Without `state` (token lists add it).
    fn to_api(self) -> api::Token {
        api::Token {
            id: self.id,
            user_id: self.user_id,
            node_id: self.node_id,
            name: self.name,
            kind: self.kind,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            parent_token_id: self.parent_token_id,
            scope: self.scope,
            projects: self.projects,
            state: None,
        }
    }
}

impl ToApi for catalog::Settings {
    type Api = api::Settings;
    fn to_api(self) -> api::Settings {
        api::Settings {
            token_max_lifetime_s: self.token_max_lifetime_s,
        }
    }
}

impl ToApi for catalog::SignedOut {
    type Api = api::SignedOut;
    fn to_api(self) -> api::SignedOut {
        api::SignedOut {
            sessions: self.sessions as u64,
            api_tokens: self.api_tokens as u64,
        }
    }
}

impl ToApi for catalog::Node {
    type Api = api::Node;
    /// Without `effective_restore_roots` (node lists add them).
    fn to_api(self) -> api::Node {
        api::Node {
            id: self.id,
            name: self.name,
            state: self.state,
            embedded: self.embedded,
            max_tasks: self.max_tasks,
            version: self.version,
            last_heartbeat: self.last_heartbeat,
            created_at: self.created_at,
            source_roots: self.source_roots,
            restore_roots: self.restore_roots,
            effective_restore_roots: None,
            allow_block_devices: self.allow_block_devices,
            data_dir: self.data_dir,
        }
    }
}

impl ToApi for catalog::Datastore {
    type Api = api::Datastore;
    fn to_api(self) -> api::Datastore {
        api::Datastore {
            id: self.id,
            name: self.name,
            node_id: self.node_id,
            path: self.path,
            bytes_used: self.bytes_used,
            bytes_logical: self.bytes_logical,
            created_at: self.created_at,
            gc_schedule: self.gc_schedule,
            verify_schedule: self.verify_schedule,
            verify_max_age_days: self.verify_max_age_days,
        }
    }
}

impl ToApi for catalog::Source {
    type Api = api::Source;
    fn to_api(self) -> api::Source {
        api::Source {
            id: self.id,
            name: self.name,
            kind: self.kind,
            path: self.path,
            node_id: self.node_id,
            project_id: self.project_id,
            tags: self.tags,
            settings: self.settings,
            policy_id: self.policy_id,
            assigned_by: self.assigned_by,
            created_at: self.created_at,
        }
    }
}

impl ToApi for catalog::Policy {
    type Api = api::Policy;
    /// With its next run as of now.
    fn to_api(self) -> api::Policy {
        let next_run = arca_control::next_run(&self, catalog::now());
        api::Policy {
            id: self.id,
            name: self.name,
            project_id: self.project_id,
            schedule: self.schedule,
            backup_window: self.backup_window,
            retention: self.retention.into(),
            datastore_id: self.datastore_id,
            priority: self.priority,
            match_pattern: self.match_pattern,
            match_tags: self.match_tags,
            rpo_seconds: self.rpo_seconds,
            enabled: self.enabled,
            created_at: self.created_at,
            next_run,
        }
    }
}

impl ToApi for catalog::Task {
    type Api = api::Task;
    /// The parameters as stored, whether they parse or not.
    fn to_api(self) -> api::Task {
        api::Task {
            id: self.id,
            kind: self.kind,
            state: self.state,
            project_id: self.project_id,
            source_id: self.source_id,
            policy_id: self.policy_id,
            datastore_id: self.datastore_id,
            node_id: self.node_id,
            params: self.params,
            priority: self.priority,
            slot: self.slot,
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            not_before: self.not_before,
            lease_until: self.lease_until,
            cancel_requested: self.cancel_requested,
            bytes_done: self.bytes_done,
            bytes_total: self.bytes_total,
            progress: self.progress,
            result: self.result,
            error: self.error,
            created_by: self.created_by,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        }
    }
}

impl ToApi for catalog::TaskLog {
    type Api = api::TaskLog;
    fn to_api(self) -> api::TaskLog {
        api::TaskLog {
            seq: self.seq,
            time: self.time,
            level: self.level,
            message: self.message,
        }
    }
}

impl ToApi for catalog::RestorePoint {
    type Api = api::RestorePoint;
    fn to_api(self) -> api::RestorePoint {
        api::RestorePoint {
            id: self.id,
            datastore_id: self.datastore_id,
            source_id: self.source_id,
            source_name: self.source_name,
            project_id: self.project_id,
            kind: self.kind,
            time: self.time,
            bytes_total: self.bytes_total,
            bytes_added: self.bytes_added,
            files: self.files,
            hostname: self.hostname,
            task_id: self.task_id,
            created_at: self.created_at,
            state: self.state,
            damage: self.damage,
            verified_at: self.verified_at,
            protected: self.protected,
            note: self.note,
        }
    }
}

impl ToApi for catalog::Export {
    type Api = api::Export;
    /// With its credentials (`address`, null until served, and `secret`);
    /// `routes::exports::view` decides who sees them.
    fn to_api(self) -> api::Export {
        api::Export {
            id: self.id,
            restore_point_id: self.restore_point_id,
            datastore_id: self.datastore_id,
            node_id: self.node_id,
            project_id: self.project_id,
            protocol: self.protocol,
            writable: self.writable,
            name: self.name,
            state: self.state,
            address: Some(self.address),
            error: self.error,
            on_stop: self.on_stop,
            commit_task_id: self.commit_task_id,
            created_by: self.created_by,
            created_at: self.created_at,
            expires_at: self.expires_at,
            stopped_at: self.stopped_at,
            secret: Some(self.secret),
            allow: self.allow,
            chap_user: None,
            commands: None,
        }
    }
}

impl ToApi for catalog::AuditEntry {
    type Api = api::AuditEntry;
    fn to_api(self) -> api::AuditEntry {
        api::AuditEntry {
            id: self.id,
            time: self.time,
            actor: self.actor,
            action: self.action,
            target: self.target,
            remote: self.remote,
            result: self.result,
            detail: self.detail,
        }
    }
}
