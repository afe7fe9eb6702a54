// Who is signed in and what they may do. Mirrors the server's role table
// (web/src/auth.rs `allows`), only to decide what to offer: the server
// checks every request itself, so a page shown by mistake still cannot
// do what the role does not allow.

const ALLOWS = {
  admin: ['read', 'manage', 'restore', 'audit', 'administer'],
  operator: ['read', 'manage', 'restore'],
  'restore-only': ['read', 'restore'],
  auditor: ['read', 'audit'],
};

export const session = {
  /** GET /me: {user, token, token_id, roles, csrf}. */
  me: null,
};

/** May the signed-in user do action in project (undefined: in some project)? */
export function can(action, projectId) {
  const roles = (session.me && session.me.roles) || [];
  return roles.some((b) => (ALLOWS[b.role] || []).includes(action)
    && (projectId === undefined || b.project_id === null || b.project_id === projectId));
}

/** Administer needs a binding for every project (an admin of all projects). */
export function isGlobalAdmin() {
  const roles = (session.me && session.me.roles) || [];
  return roles.some((b) => b.role === 'admin' && b.project_id === null);
}

/** Restore-only users (every binding restore-only) see browse, download and restore. */
export function restoreOnly() {
  const roles = (session.me && session.me.roles) || [];
  return roles.length > 0 && roles.every((b) => b.role === 'restore-only');
}

/** Read-only users (auditors, and no role that manages or restores). */
export function readOnly() {
  return !can('manage') && !can('restore');
}

/** Everyone but restore-only users sees the administration pages (read-only for auditors). */
export function seesAdministration() {
  return can('read') && !restoreOnly();
}
