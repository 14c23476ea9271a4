/**
 * The parts of `jose` the service-account assertion uses, imported by path: loaded through
 * `import()` by ./adc.ts, this module pulls in jose's signing and key import only, not the whole
 * package (JWE, JWKS, ...), which its index would (about 114 KB in the bundle, 12 files' worth
 * of parsing from source).
 *
 * @module
 */

export { SignJWT } from "jose/jwt/sign";
export { importPKCS8 } from "jose/key/import";
