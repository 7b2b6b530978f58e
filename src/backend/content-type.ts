/**
 * Media types kept as model metadata (`contentType`): the syntax of RFC 9110 §8.3.1 —
 * `type/subtype` (tokens) and optional `; name=value` parameters (a token or a quoted string) —
 * at most {@link MAX_CONTENT_TYPE_LENGTH} characters, printable ASCII only.
 */

/** Longest content type kept (characters). */
export const MAX_CONTENT_TYPE_LENGTH = 256;

/** What GET answers for a model whose content type is unknown. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[\\t !#-\\[\\]-~]|\\\\[\\t -~])*"';
const MEDIA_TYPE = new RegExp(
  `^(${TOKEN})/(${TOKEN})((?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*)[ \\t]*;?[ \\t]*$`,
);

/**
 * The media type to keep for `value` (type and subtype lowercased, surrounding blanks and a
 * trailing `;` dropped, parameters as written),
 * or a sentence saying what is wrong with it.
 */
export function parseContentType(
  value: string,
): { ok: true; value: string } | { ok: false; why: string } {
  const v = value.trim();
  if (v.length === 0) return { ok: false, why: 'content type is empty' };
  if (v.length > MAX_CONTENT_TYPE_LENGTH) {
    return {
      ok: false,
      why: `content type is ${v.length} characters long, at most ${MAX_CONTENT_TYPE_LENGTH} are kept`,
    };
  }
  const m = MEDIA_TYPE.exec(v);
  if (m === null) {
    return {
      ok: false,
      why: `content type '${printable(v)}' is not a media type (type/subtype[; name=value]...)`,
    };
  }
  // Parameters stay as written (a quoted value may hold anything); a trailing ';' is dropped.
  const type = `${(m[1] as string).toLowerCase()}/${(m[2] as string).toLowerCase()}`;
  return { ok: true, value: `${type}${m[3] ?? ''}` };
}

function printable(v: string): string {
  const s = v.length > 60 ? `${v.slice(0, 60)}…` : v;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it hides
  return s.replace(/[\u0000-\u001f\u007f-\uffff]/g, '?');
}
