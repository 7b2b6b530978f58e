/**
 * What `max_message_size` means for models. It counts characters of one client message's JSON text;
 * a model travels in it as base64 (4 characters per 3 bytes) plus a small JSON envelope (request
 * id, name, model type), so a model of up to about 3/4 of the limit fits.
 */

/** Characters of a write request beside the base64 (envelope, model type): a generous figure. */
const ENVELOPE_CHARS = 1024;

/** The largest model (bytes) whose write request fits `maxMessageSize` characters, roughly. */
export function modelBytesWithin(maxMessageSize: number): number {
  return Math.max(0, Math.floor(((maxMessageSize - ENVELOPE_CHARS) * 3) / 4));
}

/** `n` bytes for people: `48.0 MiB`, `2.3 KiB`, `17 bytes`. */
export function sizeText(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${Math.floor(n)} bytes`;
}

/**
 * The error answered to a request over the limit: the setting's name, and both sides in model
 * bytes, e.g. `message of 80000116 characters (a model of about 57.2 MiB) is over the limit of
 * 67108864 characters: the Juggler control's max_message_size, which fits models up to about
 * 48.0 MiB (base64 in JSON is 4/3 of the model); raise it in the control's config`.
 */
export function tooLargeText(length: number, maxMessageSize: number): string {
  return (
    `message of ${length} characters (a model of about ${sizeText((length * 3) / 4)}) is over the limit of ` +
    `${maxMessageSize} characters: the Juggler control's max_message_size, which fits models up to ` +
    `about ${sizeText(modelBytesWithin(maxMessageSize))} (base64 in JSON is 4/3 of the model); raise it in ` +
    `the control's config`
  );
}
