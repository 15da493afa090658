import { hkdfSync } from 'node:crypto';
import type { Config } from './config.js';
import { ApiError, bearerError } from './errors.js';
import { newSessionId } from './ids.js';
import { log } from './log.js';
import { verifyPassword } from './passwords.js';
import { epochSeconds, isSessionLive, type SessionsRepository } from './sessions.js';
import {
  AccessTokens,
  formatRefreshToken,
  hashRefreshSecret,
  newRefreshSecret,
  parseRefreshToken,
  refreshHashesEqual,
  successorSecret,
  type Clock,
} from './tokens.js';
import { normalizeEmail, toPublicUser, type PublicUser, type User, type UsersRepository } from './users.js';

export interface TokenPair {
  token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  user: PublicUser;
}

/** Who is asking: carried into the audit log, never used to decide anything in v1. */
export interface Caller {
  requestId: string;
  sourceIp: string | undefined;
  userAgent: string | undefined;
}

export type LogoutScope = 'local' | 'global';

export interface AuthServiceDeps {
  config: Pick<Config, 'bcryptCost' | 'refreshTokenTtlSeconds' | 'signingKeys'>;
  users: UsersRepository;
  sessions: SessionsRepository;
  tokens: AccessTokens;
  clock: Clock;
}

/** A per-kid key for deriving refresh-token successors, kept apart from the JWT signing use. */
function rotationKeys(signingKeys: Config['signingKeys']): Map<string, Uint8Array> {
  return new Map(
    [...signingKeys.keys].map(([kid, secret]) => [kid, new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), 'vpn-auth refresh-token rotation', 32))]),
  );
}

/**
 * The rules of signing in and staying signed in. Handlers parse and validate, then call one
 * method here; everything that can go wrong leaves as an ApiError.
 */
export class AuthService {
  private readonly rotationKeys: Map<string, Uint8Array>;

  constructor(private readonly deps: AuthServiceDeps) {
    this.rotationKeys = rotationKeys(deps.config.signingKeys);
  }

  /**
   * Unknown email, wrong password, over-long password and disabled account all end in the same
   * 401 after the same single bcrypt comparison, so neither answer nor time tells them apart.
   */
  async login(email: string, password: string, caller: Caller): Promise<TokenPair> {
    const { users, config } = this.deps;
    const user = await users.findByEmail(normalizeEmail(email));
    const passwordMatches = await verifyPassword(password, user?.passwordHash, config.bcryptCost);
    if (!user || !passwordMatches || user.status !== 'active') {
      const reason = !user ? 'unknown_user' : !passwordMatches ? 'bad_password' : 'disabled';
      log.info('login_failed', { reason, userId: user?.id, ...caller });
      throw new ApiError('invalid_credentials');
    }
    const now = this.deps.clock();
    const sessionId = newSessionId();
    const secret = newRefreshSecret();
    const [, signedIn] = await Promise.all([
      this.deps.sessions.create({
        id: sessionId,
        userId: user.id,
        refreshHash: hashRefreshSecret(secret),
        rotationKid: config.signingKeys.currentKid,
        userEpoch: user.sessionEpoch,
        createdAt: now.toISOString(),
        expiresAt: epochSeconds(now) + config.refreshTokenTtlSeconds,
      }),
      users.recordLogin(user.id, now),
    ]);
    log.info('login_succeeded', { userId: user.id, sessionId, ...caller });
    return this.tokenPair(signedIn, sessionId, secret, config.refreshTokenTtlSeconds);
  }

  /**
   * Rotate a refresh token: the presented secret must be the session's current one; it is
   * replaced by its successor with a conditional write, so a token can be rotated only once.
   */
  async refresh(refreshToken: string, caller: Caller): Promise<TokenPair> {
    const parsed = parseRefreshToken(refreshToken);
    if (!parsed) throw new ApiError('invalid_refresh_token');
    const { session, user } = await this.deps.sessions.getWithUser(parsed.sessionId, parsed.userId);
    const now = this.deps.clock();
    const presentedHash = hashRefreshSecret(parsed.secret);
    if (!isSessionLive(session, user, now) || !refreshHashesEqual(presentedHash, session!.refreshHash)) {
      log.info('refresh_failed', { sessionId: parsed.sessionId, userId: user?.id, ...caller });
      throw new ApiError('invalid_refresh_token');
    }
    const kid = this.deps.config.signingKeys.currentKid;
    const successor = successorSecret(this.rotationKeys.get(kid)!, session!.id, parsed.secret);
    const rotated = await this.deps.sessions.rotate(session!.id, {
      fromHash: presentedHash,
      toHash: hashRefreshSecret(successor),
      rotationKid: kid,
      at: now,
    });
    if (!rotated) {
      log.info('refresh_failed', { sessionId: session!.id, userId: user!.id, reason: 'lost_race', ...caller });
      throw new ApiError('invalid_refresh_token');
    }
    log.info('token_refreshed', { userId: user!.id, sessionId: session!.id, ...caller });
    return this.tokenPair(user!, session!.id, successor, session!.expiresAt - epochSeconds(now));
  }

  /** End the caller's session (`local`) or every session of the user (`global`). Idempotent. */
  async logout(accessToken: string, scope: LogoutScope, caller: Caller): Promise<void> {
    const claims = await this.deps.tokens.verify(accessToken);
    const now = this.deps.clock();
    if (scope === 'global') {
      await this.deps.users.revokeAllSessions(claims.sub, now).catch((error: unknown) => {
        // A token for a user that no longer exists has nothing left to end.
        if ((error as Error).name !== 'UserNotFoundError') throw error;
      });
    }
    await this.deps.sessions.revoke(claims.sid, claims.sub, now);
    log.info(scope === 'global' ? 'logout_all' : 'logout', { userId: claims.sub, sessionId: claims.sid, ...caller });
  }

  /** The signed-in user, read now: a revoked session, a disabled user or a changed epoch is refused. */
  async me(accessToken: string): Promise<PublicUser> {
    const claims = await this.deps.tokens.verify(accessToken);
    const { session, user } = await this.deps.sessions.getWithUser(claims.sid, claims.sub);
    if (!isSessionLive(session, user, this.deps.clock())) throw bearerError('invalid_token', true);
    return toPublicUser(user!);
  }

  private async tokenPair(user: User, sessionId: string, secret: Buffer, refreshExpiresIn: number): Promise<TokenPair> {
    const token = await this.deps.tokens.sign({ userId: user.id, sessionId, role: user.role });
    return {
      token,
      token_type: 'Bearer',
      expires_in: this.deps.tokens.ttlSeconds,
      refresh_token: formatRefreshToken({ sessionId, userId: user.id, secret }),
      refresh_expires_in: refreshExpiresIn,
      user: toPublicUser(user),
    };
  }
}
