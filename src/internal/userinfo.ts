/**
 * An address or URL for a message, with everything before its last `@` (a user
 * name, a password, a token pasted in the wrong place) replaced by `[userinfo]`;
 * a leading `scheme://` is kept. Everything up to the LAST `@` goes, not only a
 * well-formed userinfo: a careless value may hold a password with `/`, `@` or a
 * space that a URL parser would cut elsewhere, and such a value must not be
 * echoed either. Text without `@` is returned as it is.
 */
export function hideUserinfo(text: string): string {
  const at = text.lastIndexOf('@');
  if (at < 0) return text;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0] ?? '';
  return `${scheme}[userinfo]${text.slice(at)}`;
}
