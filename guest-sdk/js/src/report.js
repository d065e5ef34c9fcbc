// What a health check found.

import { HealthStatus, isCase } from './wit.js';

/**
 * A status, one line a human can act on, and extra details.
 *
 * Build one with `healthy`, `degraded` or `unhealthy` and chain `detail`:
 *
 *     HealthReport.healthy('GET http://... returned 200').detail('version', '2.1')
 */
export class HealthReport {
  constructor(status, message = '', details = []) {
    if (!isCase(HealthStatus, status)) {
      throw new TypeError(`${JSON.stringify(status)} is not a health status (${Object.values(HealthStatus).join(', ')})`);
    }
    this.status = status;
    this.message = message;
    this.details = Array.from(details ?? []);
  }

  /** The target meets its success condition. */
  static healthy(message = '') {
    return new HealthReport(HealthStatus.HEALTHY, message);
  }

  /** The target answers but reports a problem. */
  static degraded(message) {
    return new HealthReport(HealthStatus.DEGRADED, message);
  }

  /** The target does not meet its success condition; say why. */
  static unhealthy(message) {
    return new HealthReport(HealthStatus.UNHEALTHY, message);
  }

  /** A healthy report saying what answered ("GET URL returned 200"). */
  static fromResponse(response) {
    return HealthReport.healthy(response.describeStatus());
  }

  /** Replaces the message; returns the report. */
  withMessage(message) {
    this.message = message;
    return this;
  }

  /** Adds a detail shown to operators; returns the report. */
  detail(key, value) {
    this.details.push([String(key), String(value)]);
    return this;
  }

  /** The WIT record `health-report`. */
  toWit() {
    return {
      status: this.status,
      message: String(this.message ?? ''),
      details: this.details.map(([k, v]) => [String(k), String(v)]),
    };
  }

  toString() {
    return `HealthReport(${this.status}, ${JSON.stringify(this.message)})`;
  }
}
