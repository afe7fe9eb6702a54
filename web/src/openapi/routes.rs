//! The route table of the OpenAPI document: every endpoint with its
//! summary, request body, response, permission and query parameters.

use super::Route;

const TASK_Q: &[(&str, &str)] = &[
    ("state", "string"),
    ("kind", "string"),
    ("source", "integer"),
    ("limit", "integer"),
    ("offset", "integer"),
];
const RP_Q: &[(&str, &str)] = &[
    ("source", "string"),
    ("project", "string"),
    ("kind", "string"),
    ("since", "integer"),
    ("until", "integer"),
    ("limit", "integer"),
    ("offset", "integer"),
];

const TREE_Q: &[(&str, &str)] = &[
    ("path", "string"),
    ("recursive", "boolean"),
    ("limit", "integer"),
    ("offset", "integer"),
];
const FILES_Q: &[(&str, &str)] = &[("path", "string"), ("format", "string")];
const SEARCH_Q: &[(&str, &str)] = &[
    ("pattern", "string"),
    ("source", "string"),
    ("since", "integer"),
    ("until", "integer"),
    ("limit", "integer"),
    ("ignore_case", "boolean"),
    ("images", "boolean"),
];
const PROTECTION_Q: &[(&str, &str)] = &[
    ("from", "integer"),
    ("to", "integer"),
    ("project", "string"),
    ("format", "string"),
];
const STORAGE_Q: &[(&str, &str)] = &[
    ("from", "integer"),
    ("to", "integer"),
    ("datastore", "string"),
    ("format", "string"),
];
const TASK_REPORT_Q: &[(&str, &str)] = &[
    ("from", "integer"),
    ("to", "integer"),
    ("kind", "string"),
    ("source", "string"),
    ("format", "string"),
];
const EXPORT_Q: &[(&str, &str)] = &[("all", "boolean")];
const AUDIT_Q: &[(&str, &str)] = &[
    ("actor", "string"),
    ("action", "string"),
    ("result", "string"),
    ("since", "integer"),
    ("until", "integer"),
    ("limit", "integer"),
    ("offset", "integer"),
];
const S3_KEY_Q: &[(&str, &str)] = &[("user", "string")];
const DELETE_SOURCE_Q: &[(&str, &str)] = &[("restore_points", "string")];
const STOP_EXPORT_Q: &[(&str, &str)] = &[("commit", "boolean")];

macro_rules! r {
    ($m:literal, $p:literal, $s:literal, $perm:literal, $req:expr, $ok:expr) => {
        r!($m, $p, $s, $perm, $req, $ok, &[])
    };
    ($m:literal, $p:literal, $s:literal, $perm:literal, $req:expr, $ok:expr, $q:expr) => {
        Route {
            method: $m,
            path: $p,
            summary: $s,
            permission: $perm,
            request: $req,
            ok: $ok,
            query: $q,
        }
    };
}

pub const ROUTES: &[Route] = &[
    r!(
        "get",
        "/healthz",
        "Liveness and catalog check",
        "public",
        None,
        (200, Some("Health"))
    ),
    r!(
        "get",
        "/metrics",
        "Prometheus metrics (names nodes and datastores and their sizes): any valid token whose scope allows it (full, read-only or metrics); 401 without one",
        "any role (tokens of scope metrics too)",
        None,
        (200, Some("Text"))
    ),
    r!(
        "get",
        "/api/v1/openapi.json",
        "This document",
        "public",
        None,
        (200, Some("Object"))
    ),
    r!(
        "post",
        "/api/v1/auth/login",
        "Sign in; returns a 12-hour session token. 5 failures per user name or 20 per address within 15 minutes lock further attempts (429 with Retry-After). With cookie: true (the web UI) the token goes to an HttpOnly, SameSite=Strict cookie arca_session instead and the answer carries csrf: requests signed in by the cookie that are not GET or HEAD must send it as X-Arca-CSRF (403 otherwise)",
        "public",
        Some("Login"),
        (200, Some("Session"))
    ),
    r!(
        "post",
        "/api/v1/auth/logout",
        "Sign out: the session or token of the request is revoked and the session cookie removed",
        "signed-in",
        None,
        (204, None)
    ),
    r!(
        "post",
        "/api/v1/auth/password",
        "Change your password (at least 10 characters, not the user name); your other sessions are signed out",
        "signed-in",
        Some("ChangePassword"),
        (200, Some("PasswordChanged"))
    ),
    r!(
        "get",
        "/api/v1/me",
        "The signed-in user, the token of the request and the roles it may use (the user's, narrowed to the token's projects)",
        "signed-in",
        None,
        (200, Some("Me"))
    ),
    r!(
        "get",
        "/api/v1/users",
        "List users",
        "administer",
        None,
        (200, Some("Users"))
    ),
    r!(
        "post",
        "/api/v1/users",
        "Create a user (a password is generated when none is given)",
        "administer",
        Some("NewUser"),
        (201, Some("CreatedUser"))
    ),
    r!(
        "get",
        "/api/v1/users/{id}",
        "One user (yourself, or any as admin)",
        "signed-in",
        None,
        (200, Some("User"))
    ),
    r!(
        "patch",
        "/api/v1/users/{id}",
        "Replace a user's roles (not your own: 409; an unknown project: 422)",
        "administer",
        Some("UserChange"),
        (200, Some("User"))
    ),
    r!(
        "delete",
        "/api/v1/users/{id}",
        "Delete a user",
        "administer",
        None,
        (204, None)
    ),
    r!(
        "post",
        "/api/v1/users/{id}/password",
        "Set a user's password (generated when none is given); their sessions are signed out",
        "administer",
        Some("ResetPassword"),
        (200, Some("PasswordChanged"))
    ),
    r!(
        "get",
        "/api/v1/tokens",
        "Your API tokens with their scope, projects, expiry, parent and state",
        "signed-in",
        None,
        (200, Some("Tokens"))
    ),
    r!(
        "post",
        "/api/v1/tokens",
        "Create an API token (shown once). It expires after expires_in_s, at most the maximum token lifetime (400 beyond it; the maximum when left out); made with an API token it is that token's child: no longer-lived, no wider scope, no more projects, and revoked with it",
        "signed-in",
        Some("NewToken"),
        (201, Some("CreatedToken"))
    ),
    r!(
        "patch",
        "/api/v1/tokens/{id}",
        "Rename a token (yours, or any as admin); its rights never change",
        "signed-in",
        Some("TokenChange"),
        (200, Some("Token"))
    ),
    r!(
        "delete",
        "/api/v1/tokens/{id}",
        "Revoke a token (yours, or any as admin) and every token made with it",
        "signed-in",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/s3-keys",
        "S3 access keys: yours; an admin of all projects sees every user's, or one user's with ?user=NAME (404 for an unknown user)",
        "signed-in",
        None,
        (200, Some("S3Keys")),
        S3_KEY_Q
    ),
    r!(
        "post",
        "/api/v1/s3-keys",
        "Create an S3 access key for the S3 gateway (the secret is shown once); it acts as you, reading the sources of the projects where you may restore. Not with a token limited to projects",
        "signed-in",
        Some("NewS3Key"),
        (201, Some("CreatedS3Key"))
    ),
    r!(
        "delete",
        "/api/v1/s3-keys/{id}",
        "Revoke an S3 access key (yours, or any as admin): refused by the gateway at once",
        "signed-in",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/status",
        "The server's version, its S3 gateway's address and its nodes",
        "signed-in",
        None,
        (200, Some("Status"))
    ),
    r!(
        "get",
        "/api/v1/settings",
        "Server settings: the maximum lifetime of API tokens",
        "administer",
        None,
        (200, Some("Settings"))
    ),
    r!(
        "patch",
        "/api/v1/settings",
        "Change server settings (token_max_lifetime_s: 1 hour to 10 years; existing tokens keep their expiry)",
        "administer",
        Some("SettingsPatch"),
        (200, Some("Settings"))
    ),
    r!(
        "post",
        "/api/v1/keys/{name}/rotate",
        "Rotate a key file of the server (name: credentials, sealing hypervisors' SSH keys; s3, sealing S3 secret keys): a new random key, every secret resealed under it in one transaction, then the file replaced. 409 when the server keeps no such key or a secret does not open; 404 for another name",
        "administer",
        None,
        (200, Some("KeyRotation"))
    ),
    r!(
        "get",
        "/api/v1/projects",
        "Projects you can read",
        "signed-in",
        None,
        (200, Some("Projects"))
    ),
    r!(
        "post",
        "/api/v1/projects",
        "Create a project",
        "administer",
        Some("NewProject"),
        (201, Some("Project"))
    ),
    r!(
        "get",
        "/api/v1/nodes",
        "Nodes",
        "any role",
        None,
        (200, Some("Nodes"))
    ),
    r!(
        "post",
        "/api/v1/nodes",
        "Add a remote node; the answer carries its token, shown once (`arca node --token`)",
        "administer",
        Some("NewNode"),
        (201, Some("CreatedNode"))
    ),
    r!(
        "patch",
        "/api/v1/nodes/{id}",
        "Set where the node's sources may live and its restores may write, and whether restores may write block devices (422 for a bad path)",
        "administer",
        Some("NodeSettings"),
        (200, Some("Node"))
    ),
    r!(
        "delete",
        "/api/v1/nodes/{id}",
        "Remove a node and its tokens (409 for the server's own node, and while it has sources, datastores, or queued or running tasks)",
        "administer",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/datastores",
        "Datastores",
        "any role",
        None,
        (200, Some("Datastores"))
    ),
    r!(
        "patch",
        "/api/v1/datastores/{id}",
        "Change a datastore's gc and verify schedules (`never` turns one off)",
        "administer",
        Some("DatastoreSettings"),
        (200, Some("Datastore"))
    ),
    r!(
        "post",
        "/api/v1/datastores/{id}/gc",
        "Run gc on the datastore now, beside running backups; returns the task",
        "administer",
        Some("GcNow"),
        (202, Some("Task"))
    ),
    r!(
        "post",
        "/api/v1/datastores/{id}/verify",
        "Verify the datastore now (the restore points due, or all); returns the task",
        "administer",
        Some("VerifyNow"),
        (202, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/sources",
        "Sources of the projects you can read",
        "read",
        None,
        (200, Some("Sources"))
    ),
    r!(
        "post",
        "/api/v1/sources",
        "Add a source",
        "manage",
        Some("NewSource"),
        (201, Some("Source"))
    ),
    r!(
        "get",
        "/api/v1/sources/{id}",
        "One source",
        "read",
        None,
        (200, Some("Source"))
    ),
    r!(
        "patch",
        "/api/v1/sources/{id}",
        "Change a source's name, path, tags, settings or policy (null policy: back to the match rules)",
        "manage",
        Some("SourceChange"),
        (200, Some("Source"))
    ),
    r!(
        "delete",
        "/api/v1/sources/{id}",
        "Remove a source. restore_points=keep (default): its restore points stay listed under its name, with a null source_id (204); remove: forget tasks delete them from their datastores (one per datastore, returned with 202; 204 when it had none), and 409 naming how many are protected when any is (the source stays). 409 while a task of it runs",
        "manage",
        None,
        (204, None),
        DELETE_SOURCE_Q
    ),
    r!(
        "post",
        "/api/v1/sources/{id}/backup",
        "Back up now",
        "manage",
        Some("BackupNow"),
        (202, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/hypervisors",
        "Hypervisors (libvirt hosts)",
        "read",
        None,
        (200, Some("Hypervisors"))
    ),
    r!(
        "post",
        "/api/v1/hypervisors",
        "Add a hypervisor (its SSH key is stored sealed, never shown)",
        "manage",
        Some("NewHypervisor"),
        (201, Some("Hypervisor"))
    ),
    r!(
        "get",
        "/api/v1/hypervisors/{id}",
        "One hypervisor",
        "read",
        None,
        (200, Some("Hypervisor"))
    ),
    r!(
        "delete",
        "/api/v1/hypervisors/{id}",
        "Delete a hypervisor without sources",
        "manage",
        None,
        (204, None)
    ),
    r!(
        "post",
        "/api/v1/hypervisors/{id}/sync",
        "Sync its inventory: domains become libvirt sources",
        "manage",
        None,
        (200, Some("SyncReport"))
    ),
    r!(
        "get",
        "/api/v1/policies",
        "Policies",
        "read",
        None,
        (200, Some("Policies"))
    ),
    r!(
        "post",
        "/api/v1/policies",
        "Add a policy",
        "manage",
        Some("NewPolicy"),
        (201, Some("Policy"))
    ),
    r!(
        "get",
        "/api/v1/policies/{id}",
        "One policy",
        "read",
        None,
        (200, Some("Policy"))
    ),
    r!(
        "patch",
        "/api/v1/policies/{id}",
        "Change a policy's schedule, window, retention, datastore, priority, match rules, RPO or enabled (null clears an optional one)",
        "manage",
        Some("PolicyChange"),
        (200, Some("Policy"))
    ),
    r!(
        "delete",
        "/api/v1/policies/{id}",
        "Remove a policy (409 while a task of it, or of a source it is assigned to, runs)",
        "manage",
        None,
        (204, None)
    ),
    r!(
        "get",
        "/api/v1/policies/{id}/preview",
        "Retention preview: for every source the policy applies to, its restore points newest first, each kept or not and why (the rules that keep it, protected, exported), with counts; from the catalog, as a prune would decide now",
        "read",
        None,
        (200, Some("RetentionPreview"))
    ),
    r!(
        "post",
        "/api/v1/policies/{id}/prune",
        "Prune now: queues a prune task per source the policy applies to (in the datastore its backups go to, with its retention) and returns them ([] for none); what they remove is what the preview shows. 409 while a prune of the policy is queued or running, or when the policy has no retention rule",
        "manage",
        None,
        (202, Some("Tasks"))
    ),
    r!(
        "get",
        "/api/v1/tasks",
        "Tasks, newest first (state, kind, source: a source's id; all optional)",
        "read",
        None,
        (200, Some("Tasks")),
        TASK_Q
    ),
    r!(
        "get",
        "/api/v1/tasks/{id}",
        "One task with its progress",
        "read",
        None,
        (200, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/tasks/{id}/logs",
        "A task's log",
        "read",
        None,
        (200, Some("TaskLogs"))
    ),
    r!(
        "post",
        "/api/v1/tasks/{id}/cancel",
        "Cancel a task",
        "manage (restore for restores)",
        None,
        (200, Some("Cancelled"))
    ),
    r!(
        "post",
        "/api/v1/tasks/{id}/retry",
        "Run a failed or cancelled task again: a new task of the same kind and parameters (a backup on its source's node), due now; 409 for a task that is queued, running or succeeded, a backup whose source was removed, or a gc or verify while another of its datastore is queued or running",
        "manage",
        None,
        (201, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/reports/protection",
        "Protection report over [from, to] (Unix seconds; default the 7 days before to, which defaults to now; 400 when from > to or negative): per source its policy, RPO, newest good restore point, next run, status (rpo_missed, never_backed_up, no_policy, ok: problems first) and RPO compliance (the fraction of the period, from the source's creation and up to now, during which its newest good backup was not older than the RPO); per policy its sources and their mean compliance. project: one project by id or name (404 if unknown or not readable). format=csv: the sources as CSV",
        "read",
        None,
        (200, Some("ProtectionReport")),
        PROTECTION_Q
    ),
    r!(
        "get",
        "/api/v1/reports/storage",
        "Storage report over [from, to] (as for protection): per datastore its numbers now and the samples of the period (bytes used, logical bytes, ratio = logical / used; one per five minutes at most, hourly after two days, daily after 30 days). datastore: one by id or name (404 if unknown). format=csv: the samples as CSV",
        "signed-in with a role",
        None,
        (200, Some("StorageReport")),
        STORAGE_Q
    ),
    r!(
        "get",
        "/api/v1/reports/tasks",
        "Tasks report over [from, to] (as for protection): the tasks of the caller's projects that ended in the period (kind, state, source, node, times, duration, bytes, throughput), the last to end first, and per kind the counts by state and the median and 95th percentile duration and mean throughput of the succeeded ones. kind; source: by id or name (404 if no readable source has it). format=csv: the tasks as CSV",
        "read",
        None,
        (200, Some("TaskReport")),
        TASK_REPORT_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points",
        "Restore points, newest first (project: a project's id or name; 404 if unknown or not readable)",
        "read",
        None,
        (200, Some("RestorePoints")),
        RP_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points/{id}",
        "One restore point (id or unique prefix)",
        "read",
        None,
        (200, Some("RestorePoint"))
    ),
    r!(
        "get",
        "/api/v1/restore-points/{id}/tree",
        "Browse a restore point: the entries of a directory (path, default the root; recursive: everything below it, depth first), paginated (limit 1..=10000, default 1000; next_offset). 400 for a path with '..', 404 for a path not in it (an image restore point lists its file tree: disk.img, its partitions and their file systems); 503 when the remote node that owns its datastore is offline or not answering, 504 when it answers too late",
        "read",
        None,
        (200, Some("TreePage")),
        TREE_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points/{id}/files",
        "Download from a restore point (tree or image; for an image, its disk as disk.img). A file (path): its bytes, streamed, with Content-Length, Content-Type by extension, Content-Disposition (attachment; filename*=UTF-8''...), a strong ETag (the restore point never changes), Last-Modified (the file's mtime) and Accept-Ranges: bytes. Range: one range (bytes=a-b, a-, -n) answers 206 with Content-Range; several ranges answer 200 with the whole file; a range outside the file answers 416 with Content-Range: bytes */size. If-Range with the ETag or Last-Modified; If-None-Match / If-Modified-Since answer 304; If-Match / If-Unmodified-Since that do not match answer 412. HEAD answers the headers alone. A directory needs format=zip or format=tar (409 without): everything below it (files, directories, symlinks; modes and mtimes; special files left out) as one archive named <source>-<short id>-<dir>.<format>, streamed (no Content-Length); zip entries are stored (not compressed), zip64 when needed. A restore point on a remote node's datastore is read through that node. 400 for a path with '..' (percent-encoded too), NUL or over 4096 bytes; 404 for a path not in it; 409 for a symlink or special file; 503 when the remote node that holds the restore point is offline, not answering or too slow (a body already under way then ends early: the connection fails rather than deliver a short file)",
        "read",
        None,
        (200, Some("Binary")),
        FILES_Q
    ),
    r!(
        "get",
        "/api/v1/restore-points/search",
        "Find files across the tree restore points the caller may read (those GET /api/v1/restore-points lists for source, since, until), newest first: pattern is a glob matched against each entry's name, or against its whole path relative to the root when it has a '/' ('*.conf', 'etc/*.conf', 'home/**/*.pdf'); ignore_case; at most limit matches (1..=10000, default 1000; truncated says the limit cut the list). A remote node searches its own datastores (asked over the node protocol). images=true searches inside image restore points too (the files of the file systems on their partitions; it reads every image's file-system metadata), otherwise they are skipped. Restore points that cannot be searched (images without images=true, those on a remote node that is offline or does not answer in time) are listed in skipped with the reason; the others are still searched. 400 for a bad pattern",
        "read",
        None,
        (200, Some("SearchResult")),
        SEARCH_Q
    ),
    r!(
        "patch",
        "/api/v1/restore-points/{id}",
        "Protect a restore point (retention never removes it until unprotected) or lift that, and set its note",
        "manage",
        Some("RestorePointChange"),
        (200, Some("RestorePoint"))
    ),
    r!(
        "delete",
        "/api/v1/restore-points/{id}",
        "Delete a restore point: queues a forget task on its datastore's node and returns it; its space comes back at the datastore's next gc. 409 while it is protected (unprotect it first), served by a live export, or being removed already",
        "manage",
        None,
        (202, Some("Task"))
    ),
    r!(
        "post",
        "/api/v1/restore-points/{id}/restore",
        "Restore to a path on the datastore's node",
        "restore",
        Some("RestoreRequest"),
        (202, Some("Task"))
    ),
    r!(
        "post",
        "/api/v1/restore-points/{id}/import",
        "Import a libvirt VM onto a hypervisor (disks and domain)",
        "restore",
        Some("ImportRequest"),
        (202, Some("Task"))
    ),
    r!(
        "get",
        "/api/v1/exports",
        "Exports (live ones; all=true adds ended ones), newest first",
        "read",
        None,
        (200, Some("Exports")),
        EXPORT_Q
    ),
    r!(
        "post",
        "/api/v1/exports",
        "Export a restore point on the node that owns its datastore (`arca mount`): an image as a disk over NBD or iSCSI, or any restore point's files over NFS (read-only; allow: the client address blocks, default the caller's address); poll it until active for its address. writable=true needs manage (restore-only users get 403); writable NFS, allow without NFS or a bad address block: 422",
        "restore",
        Some("NewExport"),
        (201, Some("Export"))
    ),
    r!(
        "get",
        "/api/v1/exports/{id}",
        "One export",
        "read",
        None,
        (200, Some("Export"))
    ),
    r!(
        "patch",
        "/api/v1/exports/{id}",
        "Extend a live export: it now ends ttl from now",
        "restore",
        Some("ExtendExport"),
        (200, Some("Export"))
    ),
    r!(
        "delete",
        "/api/v1/exports/{id}",
        "Stop an export; commit=true (needs manage) writes a writable export's changes as a new restore point (a commit-export task), else they are discarded",
        "restore",
        None,
        (200, Some("Export")),
        STOP_EXPORT_Q
    ),
    r!(
        "get",
        "/api/v1/audit",
        "The audit log, newest first; filters: actor (exactly), action (exactly, or a prefix ending in `.` such as `user.`), result (ok, denied, failed), since and until (Unix seconds, inclusive); 422 when since is after until",
        "read-audit",
        None,
        (200, Some("Audit")),
        AUDIT_Q
    ),
];
