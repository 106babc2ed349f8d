"""The key to sign with: every way a configured key can be wrong is one clear error."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from schemas.errors import ConfigurationError
from schemas.keys import BUS, ROOT, SigningKey, TrustStore
from schemas.trust_root import TrustRoot, root_key
from services.keystore import KeyStore, load_key_file, signing_key_for, write_private
from services.settings import Settings


def other_kind_of_key() -> bytes:
    """A well-formed PKCS#8 PEM private key of the wrong type (ECDSA P-256)."""
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def encrypted_key() -> bytes:
    return SigningKey.generate("ofsted").private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"a passphrase"),
    )


def bad_pems() -> dict[str, bytes]:
    good = SigningKey.generate("ofsted").to_pem()
    return {
        "not PEM": b"not a key at all",
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "body cut": good.replace(good.splitlines()[1], good.splitlines()[1][:10]),
        "wrong type": other_kind_of_key(),
        "encrypted": encrypted_key(),
        "not UTF-8": b"\xff\xfe-----BEGIN PRIVATE KEY-----",
    }


def settings_with(tmp_path: Path, **update: object) -> Settings:
    return Settings(home=tmp_path).model_copy(update=update)


@pytest.mark.parametrize("name", sorted(bad_pems()))
def test_a_malformed_signing_key_variable_is_one_configuration_error(
    tmp_path: Path, name: str
) -> None:
    pem = bad_pems()[name]
    text = pem.decode("utf-8", "surrogateescape")
    settings = settings_with(tmp_path, signing_key=SecretStr(text))
    with pytest.raises(ConfigurationError, match=r"^LIAISON_SIGNING_KEY is not") as raised:
        signing_key_for("ofsted", settings, KeyStore(settings), TrustStore())
    assert "unencrypted PKCS#8 PEM Ed25519 private key" in str(raised.value)
    why = {"wrong type": "another type", "encrypted": "encrypted"}.get(name, "not PEM")
    assert why in str(raised.value)
    if pem:
        assert text not in str(raised.value)


@pytest.mark.parametrize("name", sorted(bad_pems()))
def test_a_malformed_signing_key_file_is_one_configuration_error(tmp_path: Path, name: str) -> None:
    file = tmp_path / "key.pem"
    file.write_bytes(bad_pems()[name])
    settings = settings_with(tmp_path, signing_key_file=file)
    with pytest.raises(ConfigurationError, match=f"^LIAISON_SIGNING_KEY_FILE {file} is not"):
        signing_key_for("ofsted", settings, KeyStore(settings), TrustStore())


def test_a_good_signing_key_variable_is_used(tmp_path: Path) -> None:
    key = SigningKey.generate("ofsted")
    settings = settings_with(tmp_path, signing_key=SecretStr(key.to_pem().decode()))
    assert signing_key_for("ofsted", settings, KeyStore(settings), TrustStore()).keyid == key.keyid


def test_a_missing_bus_key_says_to_generate_it_with_bus(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    with pytest.raises(ConfigurationError, match=r"run `liaison keys generate --bus`"):
        signing_key_for(BUS, settings, KeyStore(settings), TrustStore())
    with pytest.raises(ConfigurationError, match=r"`liaison keys generate --inspectorate cqc`"):
        signing_key_for("cqc", settings, KeyStore(settings), TrustStore())


def test_a_corrupt_private_key_file_in_the_store_is_one_configuration_error(
    tmp_path: Path,
) -> None:
    settings = settings_with(tmp_path)
    store = KeyStore(settings)
    key = SigningKey.generate("ofsted")
    path = store.save_private(key)
    path.write_bytes(b"garbage")
    with pytest.raises(ConfigurationError, match=f"^the private key file {path} is not"):
        store.load_private("ofsted", key.keyid)


def test_a_corrupt_trust_file_is_one_configuration_error(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    store = KeyStore(settings)
    store.save_trust(TrustStore())
    store.trust_file.write_text('{"keys": [{"keyid": 3}]}')
    with pytest.raises(ConfigurationError, match=f"^{store.trust_file} is not a trust store"):
        store.trust()


@pytest.mark.parametrize(
    ("owner", "flag"),
    [("liaison", "--bus"), ("audit", "--component audit"), ("cqc", "--inspectorate cqc")],
)
def test_a_missing_key_names_the_option_that_makes_it(
    tmp_path: Path, owner: str, flag: str
) -> None:
    settings = settings_with(tmp_path)
    with pytest.raises(ConfigurationError, match=f"run `liaison keys generate {flag}`"):
        signing_key_for(owner, settings, KeyStore(settings), TrustStore())


def test_only_pinned_root_keys_in_the_store_count_as_root_keys(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    store = KeyStore(settings)
    pinned, other = SigningKey.generate(ROOT), SigningKey.generate(ROOT)
    store.save_private(pinned)
    store.save_private(other)
    root = TrustRoot(threshold=1, keys=(root_key(pinned), root_key(SigningKey.generate(ROOT))))
    assert [k.keyid for k in store.root_keys(root)] == [pinned.keyid]


def test_a_private_key_file_is_never_replaced(tmp_path: Path) -> None:
    key = SigningKey.generate("ofsted")
    path = write_private(tmp_path / "k.pem", key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigurationError, match="never replaced"):
        write_private(path, SigningKey.generate("ofsted"))
    assert load_key_file(path, "ofsted").keyid == key.keyid
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_key_file(tmp_path / "missing.pem", "ofsted")
