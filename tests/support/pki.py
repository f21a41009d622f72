"""Test PKI: a throwaway CA for registry TLS/mTLS and a JWT signer for registry token auth.

Everything is generated fresh on disk (EC P-256 keys, short-lived certificates); nothing here is
meant to be secure, only to be accepted by CNCF distribution 2.8 and by skopeo/containers-image.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA", "TokenSigner", "libtrust_key_id"]

_VALIDITY = dt.timedelta(days=2)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _self_signed(key: ec.EllipticCurvePrivateKey, common_name: str, *, ca: bool) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(key, hashes.SHA256())


def libtrust_key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The docker/libtrust key ID of a public key (what distribution matches a JWT `kid` against).

    base32(sha256(DER SubjectPublicKeyInfo)[:30]) in 12 groups of 4 characters joined by ':'.
    """
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, len(b32), 4))


@dataclass
class CA:
    """A self-signed certificate authority in a directory (``ca.crt``/``ca.key``)."""

    dirpath: Path
    cert_path: Path
    key_path: Path

    @classmethod
    def create(cls, dirpath: Path, common_name: str = "ferry test CA") -> CA:
        """Generate a new CA into ``dirpath`` (created if missing)."""
        dirpath = Path(dirpath)
        dirpath.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        cert = _self_signed(key, common_name, ca=True)
        return cls(dirpath, _write_cert(cert, dirpath / "ca.crt"), _write_key(key, dirpath / "ca.key"))

    @property
    def cert(self) -> x509.Certificate:
        """The CA certificate object."""
        return x509.load_pem_x509_certificate(self.cert_path.read_bytes())

    def _issue(
        self, common_name: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier, stem: str
    ) -> tuple[Path, Path]:
        ca_key = _load_key(self.key_path)
        ca_cert = self.cert
        key = _new_key()
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return _write_cert(cert, self.dirpath / f"{stem}.crt"), _write_key(key, self.dirpath / f"{stem}.key")

    def issue_server_cert(self, hostnames: Iterable[str] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
        """Issue a serverAuth certificate; IP-looking names become IP SANs. Returns (cert, key)."""
        hostnames = list(hostnames)
        sans: list[x509.GeneralName] = []
        for name in hostnames:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        stem = f"server-{secrets.token_hex(4)}"
        return self._issue(hostnames[0], sans, ExtendedKeyUsageOID.SERVER_AUTH, stem)

    def issue_client_cert(self, common_name: str) -> tuple[Path, Path]:
        """Issue a clientAuth certificate with the given CN. Returns (cert, key)."""
        stem = f"client-{common_name.replace('/', '_')}-{secrets.token_hex(4)}"
        return self._issue(common_name, [], ExtendedKeyUsageOID.CLIENT_AUTH, stem)

    def write_cert_dir(self, dirpath: Path, client: tuple[Path, Path] | None = None) -> Path:
        """Write a containers ``certs.d``-style dir: ``ca.crt`` and optionally ``client.cert``/``client.key``.

        Usable as skopeo ``--cert-dir`` (or ``--src-cert-dir``/``--dest-cert-dir``).
        """
        dirpath = Path(dirpath)
        dirpath.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.cert_path, dirpath / "ca.crt")
        if client is not None:
            shutil.copyfile(client[0], dirpath / "client.cert")
            shutil.copyfile(client[1], dirpath / "client.key")
        return dirpath


@dataclass
class TokenSigner:
    """Signs Docker registry bearer tokens (JWT, ES256) the way distribution 2.8 verifies them.

    ``cert_path`` is a self-signed certificate for the signing key: point the registry's
    ``auth.token.rootcertbundle`` at it. Tokens carry it in the ``x5c`` header (default) or,
    with ``header="kid"``, only a libtrust ``kid`` that distribution looks up in the bundle.
    """

    dirpath: Path
    cert_path: Path
    key_path: Path

    @classmethod
    def create(cls, dirpath: Path) -> TokenSigner:
        """Generate a signing key and its self-signed certificate into ``dirpath``."""
        dirpath = Path(dirpath)
        dirpath.mkdir(parents=True, exist_ok=True)
        key = _new_key()
        cert = _self_signed(key, "ferry test token signer", ca=True)
        cert_path = _write_cert(cert, dirpath / "token-signer.crt")
        return cls(dirpath, cert_path, _write_key(key, dirpath / "token-signer.key"))

    @property
    def key_id(self) -> str:
        """The libtrust key ID of the signing key."""
        return libtrust_key_id(_load_key(self.key_path).public_key())

    def issue(
        self,
        subject: str,
        audience: str,
        access: list[dict],
        expires_in: int = 300,
        issuer: str = "ferry-test-issuer",
        *,
        header: str = "x5c",
    ) -> str:
        """Return a signed JWT granting ``access`` (``[{"type","name","actions"}]``) to ``subject``.

        ``audience`` must equal the registry's ``auth.token.service``, ``issuer`` its ``issuer``.
        ``expires_in`` may be negative to mint an expired token; distribution 2.8 allows 60 s of
        leeway, so use ``expires_in <= -61`` for one it refuses. ``header`` is
        ``"x5c"`` (certificate chain in the header) or ``"kid"`` (libtrust key ID).
        """
        key = _load_key(self.key_path)
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": [{"type": a["type"], "name": a["name"], "actions": list(a.get("actions", []))} for a in access],
        }
        headers: dict[str, object] = {"typ": "JWT"}
        if header == "x5c":
            der = x509.load_pem_x509_certificate(self.cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
            headers["x5c"] = [base64.b64encode(der).decode()]
        elif header == "kid":
            headers["kid"] = libtrust_key_id(key.public_key())
        else:
            raise ValueError(f"header must be 'x5c' or 'kid', not {header!r}")
        return jwt.encode(claims, key, algorithm="ES256", headers=headers)

    @staticmethod
    def decode_unverified(token: str) -> dict:
        """The claims of a token, without checking its signature (for assertions in tests)."""
        return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))
