// An independent OpenID Connect provider for Carnet's federation tests: the OpenID Certified
// `oidc-provider` package, only configured here (clients, accounts, a no-UI sign-in form).
//
// Started by tests/web/federation/conftest.py on loopback. Configuration comes from the
// environment, as JSON where structured:
//   OP_PORT           the port to listen on (127.0.0.1)
//   OP_CLIENTS        the clients (oidc-provider client metadata), Carnet's among them
//   OP_ACCOUNTS       {accountId: {"claims": {...}, "acr": "...", "amr": [...]}}
//   OP_ID_TOKEN_TTL   ID token lifetime in seconds (short, so the tests can outlive it)
//
// The sign-in "form" (GET /interaction/:uid) lists the accounts; a POST of `account=<id>` to
// /interaction/:uid signs that account in at its configured acr and grants the asked scopes.
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.env.OP_PORT);
const issuer = `http://127.0.0.1:${port}`;
const clients = JSON.parse(process.env.OP_CLIENTS);
const accounts = JSON.parse(process.env.OP_ACCOUNTS);
const idTokenTtl = Number(process.env.OP_ID_TOKEN_TTL || '60');

const claimNames = [...new Set(Object.values(accounts).flatMap((a) => Object.keys(a.claims)))];

const provider = new Provider(issuer, {
  clients,
  // How the person signed in travels with the identity, as FranceConnect+'s and PSC's do.
  claims: { sid: null, openid: ['sub', 'acr', 'amr', 'auth_time'], carnet: claimNames },
  scopes: ['openid', 'carnet'],
  acrValues: [...new Set(Object.values(accounts).map((a) => a.acr))],
  // Code flow: put the scope's claims in the ID token too, as national IdPs do.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  ttl: { IdToken: idTokenTtl },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: (ctx, id) => {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: () => ({ sub: id, ...account.claims }) };
  },
});

const callback = provider.callback();

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    const options = Object.keys(accounts).map((id) => `<option>${id}</option>`).join('');
    res.end(`<form method="post"><select name="account">${options}</select><button>Sign in</button></form>`);
    return;
  }
  const form = await readForm(req);
  const id = form.get('account');
  const account = accounts[id];
  if (!account) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'no such account',
    });
    return;
  }
  const grant = new provider.Grant({ accountId: id, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId: id, acr: account.acr, amr: account.amr },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      res.statusCode = 500;
      res.end(String(error));
    });
    return;
  }
  callback(req, res);
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});
