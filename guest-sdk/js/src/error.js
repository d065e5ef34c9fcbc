// The error a health check may throw, and how a thrown value is reported.

/**
 * Why a health check failed; reported as `unhealthy` with this message.
 * Thrown from `initialize`, it refuses the config with this message.
 */
export class ConnectorError extends Error {
  constructor(message) {
    super(String(message));
    this.name = 'ConnectorError';
  }
}

/**
 * The message to report for a value thrown into the SDK.
 *
 * The SDK's own errors and a plain `Error` carry a message meant for the
 * operator and are reported as they are; other errors (`TypeError`,
 * `RangeError`, ...) are prefixed with their name, so that a bug does not read
 * as a finding about the target. A thrown non-Error is reported as its text.
 */
export function describe(err) {
  if (err instanceof Error) {
    const text = err.message ? String(err.message) : '';
    const name = err.name ? String(err.name) : 'Error';
    if (text && (err instanceof ConnectorError || name === 'Error')) return text;
    return text ? `${name}: ${text}` : name;
  }
  const text = String(err);
  return text || 'unknown error';
}
