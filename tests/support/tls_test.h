/* tls_test.h — a throwaway CA, a server certificate for 127.0.0.1, ::1 and
 * localhost signed by it (valid 2000..2100), its unencrypted EC key, and
 * another key that does not match, for the unit tests of the HTTPS API.
 * Test material only: never trust this CA anywhere.
 *
 * Header-only (static inline), so a test uses what it needs. Not
 * thread-safe; call it from the test's main thread. */
#ifndef VD_TEST_TLS_H
#define VD_TEST_TLS_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct vd_test_tls {
	char ca[192];          /* the CA certificate (a CA bundle for clients) */
	char cert[192];        /* the server certificate */
	char key[192];         /* its key */
	char other_key[192];   /* a key that does not match cert */
};

static inline int vd_test_tls_write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* Writes ca.pem, cert.pem, key.pem and other-key.pem into dir. */
static inline int vd_test_tls_write(const char *dir, struct vd_test_tls *ret)
{
	static const char ca[] =
		"-----BEGIN CERTIFICATE-----\n"
		"MIIBbTCCARSgAwIBAgIBATAKBggqhkjOPQQDAjAfMR0wGwYDVQQDDBR2b2x1bWVk\n"
		"IHVuaXQtdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFow\n"
		"HzEdMBsGA1UEAwwUdm9sdW1lZCB1bml0LXRlc3QgQ0EwWTATBgcqhkjOPQIBBggq\n"
		"hkjOPQMBBwNCAAR1FfInhlLmIuwdPIBUr1Ovmvuv3wVZ5DfnS8pItcxAAuhMmRHR\n"
		"QTlmewPkBawpoH6PjHY6mx1gjDWXKin2YTCNoz8wPTAPBgNVHRMBAf8EBTADAQH/\n"
		"MAsGA1UdDwQEAwIBBjAdBgNVHQ4EFgQUU3PKf5+M+KfSvKP7bLoqL0rdsyMwCgYI\n"
		"KoZIzj0EAwIDRwAwRAIgfmJbn9JUsLUpQWUbx3EP2R5xwPct+IzYdWwAAtVWKKMC\n"
		"IGaDbG8+8fawUKl7tKBwgBpQPbdpmo6fso8zjS5gql46\n"
		"-----END CERTIFICATE-----\n";
	static const char cert[] =
		"-----BEGIN CERTIFICATE-----\n"
		"MIIBxDCCAWmgAwIBAgIBAjAKBggqhkjOPQQDAjAfMR0wGwYDVQQDDBR2b2x1bWVk\n"
		"IHVuaXQtdGVzdCBDQTAgFw0wMDAxMDEwMDAwMDBaGA8yMTAwMDEwMTAwMDAwMFow\n"
		"FDESMBAGA1UEAwwJMTI3LjAuMC4xMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
		"hkToJ2TAgTzuDOODN+iLACitENQi0oXouhG/NzUoB41D2WxH1dMLlA0DU18dfFor\n"
		"dLHZvKcQ/7FUfFuvYSXxzKOBnjCBmzAJBgNVHRMEAjAAMAsGA1UdDwQEAwIHgDAT\n"
		"BgNVHSUEDDAKBggrBgEFBQcDATAsBgNVHREEJTAjhwR/AAABhxAAAAAAAAAAAAAA\n"
		"AAAAAAABgglsb2NhbGhvc3QwHwYDVR0jBBgwFoAUU3PKf5+M+KfSvKP7bLoqL0rd\n"
		"syMwHQYDVR0OBBYEFK+PrU5TV8OoVwaEiq9Pn2vhIPBBMAoGCCqGSM49BAMCA0kA\n"
		"MEYCIQDPNYu0/YKPHDaDMvMxBTL7BlFK/EsEw/MUwyOY8nz8owIhAP3KIEUiImhI\n"
		"e2DMvBl/GINKLu982DRLR4Tfy93zpWWU\n"
		"-----END CERTIFICATE-----\n";
	static const char key[] =
		"-----BEGIN PRIVATE KEY-----\n"
		"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIUItmRZ2Dka3DpwW\n"
		"qoo0GlWEitS12mtPzt0qQc4mCtihRANCAASGROgnZMCBPO4M44M36IsAKK0Q1CLS\n"
		"hei6Eb83NSgHjUPZbEfV0wuUDQNTXx18Wit0sdm8pxD/sVR8W69hJfHM\n"
		"-----END PRIVATE KEY-----\n";
	static const char other_key[] =
		"-----BEGIN PRIVATE KEY-----\n"
		"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgn4MWURkIJAKMbOqt\n"
		"F9pfYXXJA8ANmBgGO0zZbTvblvahRANCAAQHgrWdkeh/g+2PKoaQsy3bn3YGvCFj\n"
		"Kqd0T9zXJBkk9I6lOJxS6FhF5qJei8lad4B2vQFQRETP0BC/sLhmklZm\n"
		"-----END PRIVATE KEY-----\n";
	int r;
	snprintf(ret->ca, sizeof(ret->ca), "%s/ca.pem", dir);
	snprintf(ret->cert, sizeof(ret->cert), "%s/cert.pem", dir);
	snprintf(ret->key, sizeof(ret->key), "%s/key.pem", dir);
	snprintf(ret->other_key, sizeof(ret->other_key), "%s/other-key.pem", dir);
	if ((r = vd_test_tls_write_file(ret->ca, ca)) < 0 ||
	    (r = vd_test_tls_write_file(ret->cert, cert)) < 0 ||
	    (r = vd_test_tls_write_file(ret->key, key)) < 0 ||
	    (r = vd_test_tls_write_file(ret->other_key, other_key)) < 0)
		fprintf(stderr, "vd_test_tls_write %s: %s\n", dir, strerror(-r));
	return r;
}

#endif
