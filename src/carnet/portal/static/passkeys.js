// Passkeys (WebAuthn): runs the ceremony a form asks for, then submits the form.
//
// A form with data-passkey="create" (add a passkey) or "get" (sign in) names, in
// data-passkey-options, the id of a <script type="application/json"> holding the options
// Carnet made (with its challenge). On submit, this asks the browser's authenticator, puts the
// answer (WebAuthn's JSON form of the credential) in the form's "credential" field, and
// submits. Carnet verifies everything on the server; nothing here is trusted.
//
// Progressive enhancement: elements marked data-passkey-only stay hidden unless this browser
// has WebAuthn, so pages without scripts only show the other ways to sign in.
"use strict";

(() => {
  const bytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  };
  const text = (buffer) => {
    if (!buffer) return null;
    const binary = String.fromCharCode(...new Uint8Array(buffer));
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const descriptors = (list) => (list || []).map((entry) => ({ ...entry, id: bytes(entry.id) }));

  // The options' base64url fields as the ArrayBuffers navigator.credentials expects.
  const creation = (options) => ({
    ...options,
    challenge: bytes(options.challenge),
    user: { ...options.user, id: bytes(options.user.id) },
    excludeCredentials: descriptors(options.excludeCredentials),
  });
  const request = (options) => ({
    ...options,
    challenge: bytes(options.challenge),
    allowCredentials: descriptors(options.allowCredentials),
  });

  // The credential as JSON (WebAuthn Level 3 toJSON), written out for older browsers.
  const serialise = (credential) => {
    const response = credential.response;
    const common = {
      id: credential.id,
      rawId: text(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
    };
    if (response.attestationObject) {
      return {
        ...common,
        response: {
          clientDataJSON: text(response.clientDataJSON),
          attestationObject: text(response.attestationObject),
          transports: response.getTransports ? response.getTransports() : [],
        },
      };
    }
    return {
      ...common,
      response: {
        clientDataJSON: text(response.clientDataJSON),
        authenticatorData: text(response.authenticatorData),
        signature: text(response.signature),
        userHandle: text(response.userHandle),
      },
    };
  };

  const ceremony = async (form) => {
    const source = document.getElementById(form.dataset.passkeyOptions);
    const options = JSON.parse(source.textContent);
    const credential =
      form.dataset.passkey === "create"
        ? await navigator.credentials.create({ publicKey: creation(options) })
        : await navigator.credentials.get({ publicKey: request(options) });
    form.elements.credential.value = JSON.stringify(serialise(credential));
  };

  document.addEventListener("DOMContentLoaded", () => {
    if (!window.PublicKeyCredential || !navigator.credentials) return;
    for (const element of document.querySelectorAll("[data-passkey-only]")) {
      element.hidden = false;
    }
    for (const form of document.querySelectorAll("form[data-passkey]")) {
      form.addEventListener("submit", async (event) => {
        if (form.elements.credential.value) return; // the ceremony is done: let it go
        event.preventDefault();
        const error = form.querySelector("[data-passkey-error]");
        if (error) error.hidden = true;
        try {
          await ceremony(form);
        } catch (failure) {
          // Cancelled, timed out, or no passkey for Carnet on this device.
          if (error) error.hidden = false;
          return;
        }
        form.submit();
      });
    }
  });
})();
