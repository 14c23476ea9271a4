/**
 * Telling TLS failures apart: a fatal alert that the *server* sends because it does not accept the
 * client certificate (or wants one) is a refused login, not a network problem.
 *
 * @module
 */

/** Alert names (OpenSSL's `SSL_R_*_ALERT_*` as Node reports them) a server sends for a bad client certificate. */
const CLIENT_CERT_ALERTS =
  /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_REQUIRED|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|UNSUPPORTED_CERTIFICATE|ACCESS_DENIED)/;

/**
 * Whether an error is the server refusing the client certificate during the TLS handshake.
 *
 * @param e The error from the driver.
 * @returns True for alerts such as `ERR_SSL_TLSV1_ALERT_UNKNOWN_CA`.
 */
export function isClientCertRefused(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  const text = e instanceof Error ? e.message : "";
  return CLIENT_CERT_ALERTS.test(`${typeof code === "string" ? code : ""} ${text}`.toUpperCase());
}
