/**
 * A write the apiserver refused because the object changed (HTTP 409). Its own module so that webhook/cluster.ts
 * can throw it without loading the certificate manager (and @peculiar/x509) with it.
 */
export class ConflictError extends Error {}
