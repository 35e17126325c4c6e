"""Client ID Metadata Documents (MCP 2025-11-25, SEP-991; draft-ietf-oauth-client-id-metadata-document).

Instead of registering at every authorization server, a client publishes one JSON document
at an HTTPS URL it controls and uses that URL *as* its client id; an authorization server
that advertises ``client_id_metadata_document_supported`` fetches the document and trusts
the redirect URIs listed there. mcpkeeper does not host anything: the user (or their
organisation) publishes the document and gives its URL (``--client-metadata-url``).

The order of preference is the specification's: a pre-registered client the user named,
then the metadata document when the server supports it, then dynamic registration.

The URL is checked here, before it is ever sent: HTTPS with a path (the draft's rules;
plain http only on loopback, for local test servers), no fragment, no credentials.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from mcpkeeper.auth.login_errors import RegistrationError
from mcpkeeper.auth.netpolicy import require_secure_endpoint
from mcpkeeper.auth.registration import ClientRegistration

__all__ = ["check_client_metadata_url", "metadata_document_client"]


def check_client_metadata_url(url: str) -> str:
    """``url`` if it may serve as a client id; :class:`RegistrationError` saying why not."""
    require_secure_endpoint(url, "client metadata URL", error=RegistrationError)
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        raise RegistrationError(f"the client metadata URL {url} needs a path (e.g. /client.json)")
    if parts.fragment or parts.username is not None or parts.password is not None:
        raise RegistrationError(f"the client metadata URL {url} must have no fragment and no credentials")
    return url


def metadata_document_client(url: str) -> ClientRegistration:
    """The client whose id is the document at ``url``: public, PKCE-protected, nothing registered."""
    return ClientRegistration(check_client_metadata_url(url), None, "none", metadata_document=True)
