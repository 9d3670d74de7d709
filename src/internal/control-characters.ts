/**
 * Control characters: C0 (U+0000 to U+001F: NUL, CR, LF, TAB, ESC, ...) and DEL
 * (U+007F). Refused in anything sent as an HTTP header or a registry label
 * (undici throws ERR_INVALID_CHAR for them), escaped or blanked in messages.
 */
const CONTROL = /[\u0000-\u001f\u007f]/;
const EVERY_CONTROL = /[\u0000-\u001f\u007f]/g;

/** True when `text` holds a control character. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL.test(text);
}

/** `text` with every control character replaced (by a string, or by what `replace` returns for it). */
export function replaceControlCharacters(text: string, replace: string | ((character: string) => string)): string {
  return text.replace(EVERY_CONTROL, (character) => (typeof replace === 'string' ? replace : replace(character)));
}
