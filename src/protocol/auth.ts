// Who an HTTP request is, at the edge, before any MCP parsing (issue 11).
// Decisions:
// - dev mode: the x-rls-user-id header travels as the SDK's per-request auth info, as before; only allowed on a
//   loopback binding (runServe refuses anything else unless the loud override is set).
// - jwt mode: the server is an OAuth 2.1 resource server as the MCP authorization spec describes. The SDK's
//   `verifyBearerToken` parses the header and checks expiry, our verifier (src/security/jwt.ts) checks signature,
//   algorithm, issuer and audience; every refusal is the SDK's `bearerAuthChallengeResponse`: 401 with
//   `WWW-Authenticate: Bearer error="invalid_token", error_description=…, resource_metadata=…`, and no MCP
//   message is read. The token is never passed on to anything (no passthrough).
// - The RFC 9728 metadata is served at /.well-known/oauth-protected-resource and at its path-suffixed form
//   for /mcp (what `getOAuthProtectedResourceMetadataUrl` names and the 401 challenge points at). The SDK's
//   builder takes one authorization server's RFC 8414 metadata; ours names a list (ZAVA_OAUTH_AUTHORIZATION_SERVERS),
//   so the document is written here, with the fields RFC 9728 defines.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AuthInfo, bearerAuthChallengeResponse, getOAuthProtectedResourceMetadataUrl, type OAuthProtectedResourceMetadata, verifyBearerToken } from '@modelcontextprotocol/server';
import { headerIdentity } from './context.js';
import type { JwtVerifier } from '../security/jwt.js';

export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';

/** Scopes this server understands (advertised; the role claims decide the stores). */
export const SCOPES_SUPPORTED = ['pii:read'];

export interface HttpAuth {
  readonly mode: 'dev' | 'jwt';
  /** Answers the discovery document for `path` (GET), or returns false when `path` is not one. */
  serveMetadata(req: IncomingMessage, res: ServerResponse, path: string, resourceUrl: string): boolean;
  /** The request's auth info, or 'refused' after writing the 401 challenge. */
  authenticate(req: IncomingMessage, res: ServerResponse, requestedUserId: string | undefined, resourceUrl: string): Promise<AuthInfo | undefined | 'refused'>;
}

export const DEV_AUTH: HttpAuth = {
  mode: 'dev',
  serveMetadata: () => false,
  authenticate: async (_req, _res, requestedUserId) => headerIdentity(requestedUserId),
};

export interface JwtAuthOptions {
  readonly verifier: Pick<JwtVerifier, 'verifyAccessToken'>;
  readonly issuer: string;
  readonly authorizationServers: readonly string[];
  /** Extra checks on a verified token (revocation); throws an OAuthError to refuse it. */
  readonly check?: (authInfo: AuthInfo) => Promise<void>;
}

export function protectedResourceMetadata(resourceUrl: string, options: Pick<JwtAuthOptions, 'issuer' | 'authorizationServers'>): OAuthProtectedResourceMetadata {
  const servers = options.authorizationServers.length > 0 ? [...options.authorizationServers] : /^https?:\/\//.test(options.issuer) ? [options.issuer] : [];
  return {
    resource: resourceUrl,
    authorization_servers: servers,
    scopes_supported: SCOPES_SUPPORTED,
    bearer_methods_supported: ['header'],
    resource_name: 'Zava Retail sales analytics (zava-mcp)',
  };
}

export function jwtAuth(options: JwtAuthOptions): HttpAuth {
  return {
    mode: 'jwt',
    serveMetadata(req, res, path, resourceUrl) {
      const suffixed = new URL(getOAuthProtectedResourceMetadataUrl(new URL(resourceUrl))).pathname;
      if (path !== PROTECTED_RESOURCE_PATH && path !== suffixed) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET' }).end();
        return true;
      }
      const body = JSON.stringify(protectedResourceMetadata(resourceUrl, options));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'max-age=300', 'access-control-allow-origin': '*' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return true;
    },
    async authenticate(req, res, requestedUserId, resourceUrl) {
      const resourceMetadataUrl = getOAuthProtectedResourceMetadataUrl(new URL(resourceUrl));
      let authInfo: AuthInfo;
      try {
        authInfo = await verifyBearerToken(req.headers.authorization, { verifier: options.verifier, resourceMetadataUrl });
        await options.check?.(authInfo);
      } catch (error) {
        const response = bearerAuthChallengeResponse(error, { resourceMetadataUrl });
        const headers: Record<string, string> = {};
        response.headers.forEach((value, name) => (headers[name] = value));
        const body = await response.text();
        headers['content-length'] = String(Buffer.byteLength(body));
        res.writeHead(response.status, headers);
        res.end(body);
        return 'refused';
      }
      // The header rides along for the pipeline to narrow with (never to widen).
      return requestedUserId === undefined ? authInfo : { ...authInfo, extra: { ...authInfo.extra, userId: requestedUserId } };
    },
  };
}
