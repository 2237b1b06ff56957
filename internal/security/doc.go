// Package security holds what Strata's listeners and clients share for
// transport security and access: TLS configurations whose certificates are
// re-read from their files when those change (so cert-manager or a
// mounted Secret can rotate them without a restart), and bearer tokens,
// optionally limited to some tenants.
package security
