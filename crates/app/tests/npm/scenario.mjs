// One step of an acceptance scenario, driven with the official ConvexHttpClient as the web app
// drives the backend (function references by path, `sessionToken` in the arguments).
//
//   node scenario.mjs <server url> <step> '<json input>'
//
// Prints one JSON object: what the user would see. A call that is expected to possibly fail is
// made with `attempt` and yields `{"$error": {isConvexError, code, field, message, text}}` instead
// of a value (`text`: the data of a ConvexError whose data is a string, as the sign-in calls send); a call made with `must` that fails ends the step with a non-zero exit.
// See ../official_client_scenarios.rs for the scenarios and what is checked.
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

const [url, step, input = "{}"] = process.argv.slice(2);
const args = JSON.parse(input);
const client = new ConvexHttpClient(url);

async function must(kind, path, fnArgs) {
  try {
    return await client[kind](makeFunctionReference(path), fnArgs);
  } catch (e) {
    throw new Error(`${kind} ${path} failed: ${e.message} ${JSON.stringify(e.data ?? null)}`);
  }
}

async function attempt(kind, path, fnArgs, on = client) {
  try {
    return await on[kind](makeFunctionReference(path), fnArgs);
  } catch (e) {
    const data = e instanceof ConvexError && typeof e.data === "object" ? e.data : {};
    return {
      $error: {
        isConvexError: e instanceof ConvexError,
        code: data.code ?? null,
        field: data.field ?? null,
        message: data.message ?? e.message,
        text: e instanceof ConvexError && typeof e.data === "string" ? e.data : null,
      },
    };
  }
}

const q = (path, a) => must("query", path, a);
const m = (path, a) => must("mutation", path, a);
const act = (path, a) => must("action", path, a);

const steps = {
  // Scenario 1: the system admin signs in and creates companies; each admin has no password yet.
  async createCompanies({ root, companies }) {
    const login = await m("auth:loginUser", { email: root.email, password: root.password });
    const sessionToken = login.sessionToken;
    const created = [];
    for (const c of companies) {
      created.push(await m("companies:createCompany", { sessionToken, ...c }));
    }
    const noPassword = await attempt("mutation", "auth:loginUser", {
      email: companies[0].adminEmail,
      password: "",
    });
    return { rootToken: sessionToken, created, noPassword };
  },

  // Scenario 1: each admin follows the emailed link, sets a password and signs in.
  async activate({ accounts }) {
    const out = [];
    for (const { email, token, password } of accounts) {
      const weak = await attempt("mutation", "auth:resetPassword", { token, newPassword: "weak" });
      const reset = await m("auth:resetPassword", { token, newPassword: password });
      const login = await m("auth:loginUser", { email, password });
      const sessionToken = login.sessionToken;
      out.push({
        weak,
        reset,
        login,
        me: await q("users:getCurrent", { sessionToken }),
        sites: await q("sites/list:listCompanySites", { sessionToken }),
        company: await q("companies/getCompany:getCurrentUserCompany", { sessionToken }),
      });
    }
    return { accounts: out };
  },

  // Scenario 2: invitations are sent; a second one to a pending address is refused.
  async invite({ sessionToken, companyId, emails, role }) {
    const sent = [];
    for (const email of emails) {
      sent.push(
        await act("users/invite/sendUserInvitation", { sessionToken, companyId, email, role }),
      );
    }
    const duplicate = await attempt("action", "users/invite/sendUserInvitation", {
      sessionToken,
      companyId,
      email: emails[0].toUpperCase(),
      role: "team_lead",
    });
    const pending = await q("users/invite/listPendingInvitations", { sessionToken, companyId });
    return { sent, duplicate, pending };
  },

  // Scenario 2: the worker accepts; revoked and lapsed links are refused.
  async accept({ sessionToken, companyId, accept, revoke, lapsed, password, name }) {
    const weak = await attempt("action", "users/invite/acceptInvitation", {
      token: accept,
      name,
      password: "password",
    });
    const joined = await act("users/invite/acceptInvitation", { token: accept, name, password });
    const me = await q("users:getCurrent", { sessionToken: joined.sessionToken });
    const again = await attempt("action", "users/invite/acceptInvitation", {
      token: accept,
      name,
      password,
    });
    let revoked = null;
    if (revoke) {
      await m("users/invite/revokeInvitation", { sessionToken, invitationId: revoke.id });
      revoked = await attempt("action", "users/invite/acceptInvitation", {
        token: revoke.token,
        name: "Rita",
        password,
      });
    }
    const expired = lapsed
      ? await attempt("action", "users/invite/acceptInvitation", {
          token: lapsed,
          name: "Late",
          password,
        })
      : null;
    const pending = await q("users/invite/listPendingInvitations", { sessionToken, companyId });
    const signIn = await attempt("mutation", "auth:loginUser", { email: me.email, password });
    return { weak, joined, me, again, revoked, expired, pending, signIn };
  },

  // Scenario 3: a participant is added; a duplicate or 8-digit NDIS number is refused.
  async participants({ sessionToken, participant }) {
    const created = await m("participants/create:createParticipant", { sessionToken, ...participant });
    const got = await q("participants/getById:getParticipantById", {
      sessionToken,
      participantId: created.participantId,
    });
    const duplicate = await attempt("mutation", "participants/create:createParticipant", {
      sessionToken,
      ...participant,
      first_name: "Sally",
    });
    const eightDigits = await attempt("mutation", "participants/create:createParticipant", {
      sessionToken,
      ...participant,
      first_name: "Sam",
      ndis_number: participant.ndis_number.slice(0, 8),
    });
    const listed = await q("participants/list:listParticipants", { sessionToken });
    return { created, got, duplicate, eightDigits, listed };
  },

  // Scenario 10: company B cannot read, list or modify company A's users and participants.
  async isolation({ a, b, participant }) {
    // A has a participant and a second user; B has a participant it deleted (a truly missing id).
    const theirs = await m("participants/create:createParticipant", {
      sessionToken: a.sessionToken,
      ...participant,
      site_id: a.siteId,
    });
    const colleague = await m("users:createUser", {
      sessionToken: a.sessionToken,
      name: "Alex Lead",
      email: "alex@abc.org",
      role: "team_lead",
    });
    const gone = await m("participants/create:createParticipant", {
      sessionToken: b.sessionToken,
      ...participant,
      site_id: b.siteId,
      ndis_number: "999888777",
    });
    await m("participants/admin:deleteParticipant", {
      sessionToken: b.sessionToken,
      participantId: gone.participantId,
    });

    const asB = { sessionToken: b.sessionToken };
    const participantCalls = [
      ["query", "participants/getById:getParticipantById", {}],
      ["mutation", "participants/update:updateParticipant", { first_name: "Changed" }],
      ["mutation", "participants/updateStatus:updateParticipantStatus", { status: "inactive" }],
      ["mutation", "participants/admin:deleteParticipant", {}],
    ];
    const participantAnswers = {};
    for (const [kind, path, extra] of participantCalls) {
      participantAnswers[path] = {
        foreign: await attempt(kind, path, { ...asB, ...extra, participantId: theirs.participantId }),
        missing: await attempt(kind, path, { ...asB, ...extra, participantId: gone.participantId }),
      };
    }
    const userCalls = [
      ["users:updateUser", { name: "Hacked" }],
      ["users:updateRole", { newRole: "frontline_worker" }],
      ["users:deleteUser", {}],
    ];
    const userAnswers = {};
    for (const [path, extra] of userCalls) {
      userAnswers[path] = {
        foreign: await attempt("mutation", path, { ...asB, ...extra, userId: colleague.userId }),
        missing: await attempt("mutation", path, { ...asB, ...extra, userId: b.missingUserId }),
      };
    }
    const lists = {
      participants: await q("participants/list:listParticipants", asB),
      search: await q("participants/search:searchParticipants", { ...asB, query: "sarah" }),
      users: await q("users:listCompanyUsers", asB),
      invitations: await attempt("query", "users/invite/listPendingInvitations", {
        ...asB,
        companyId: a.companyId,
      }),
    };
    const inviteIntoA = await attempt("action", "users/invite/sendUserInvitation", {
      ...asB,
      companyId: a.companyId,
      email: "mole@beta.org",
      role: "company_admin",
    });
    // What A still sees afterwards.
    const asA = { sessionToken: a.sessionToken };
    const after = {
      participant: await q("participants/getById:getParticipantById", {
        ...asA,
        participantId: theirs.participantId,
      }),
      users: await q("users:listCompanyUsers", asA),
    };
    return {
      participantId: theirs.participantId,
      userId: colleague.userId,
      participantAnswers,
      userAnswers,
      lists,
      inviteIntoA,
      after,
    };
  },

  // Scenario 14: a system admin acts as a worker, with a reason, within limits; it is audited.
  async impersonate({ root, workerEmail, workerToken, otherAdminEmail, reason }) {
    const start = (target, why) =>
      attempt("mutation", "impersonation:startImpersonation", {
        admin_session_token: root,
        target_user_email: target,
        reason: why,
      });
    const noReason = await start(workerEmail, "   ");
    const started = await start(workerEmail, reason);
    const token = started.impersonation_token;
    // The web app passes the impersonation token as its session; setAuth sends it as a bearer.
    const bearer = new ConvexHttpClient(url);
    bearer.setAuth(token);
    const acting = {
      me: await q("users:getCurrent", { sessionToken: token }),
      permissions: await q("permissions:getUserPermissions", { sessionToken: token }),
      viaBearer: await attempt("query", "auth:verifySession", {}, bearer),
      audit: await attempt("query", "audit:listEvents", { sessionToken: token }),
      status: await q("impersonation:getImpersonationStatus", { session_token: token }),
    };
    // Refused while a place is free, so for the target alone.
    const adminTarget = await start(otherAdminEmail, reason);
    const second = await start(workerEmail, reason);
    const third = await start(workerEmail, reason);
    const fourth = await start(workerEmail, reason);
    const ended = await m("impersonation:endImpersonation", {
      sessionToken: root,
      impersonation_token: token,
    });
    const afterEnd = {
      me: await q("users:getCurrent", { sessionToken: token }),
      status: await q("impersonation:getImpersonationStatus", { session_token: token }),
      rootMe: await q("users:getCurrent", { sessionToken: root }),
      handedMe: await q("users:getCurrent", { sessionToken: ended.original_session_token }),
      workerMe: await q("users:getCurrent", { sessionToken: workerToken }),
    };
    const events = await q("audit:listEvents", { sessionToken: root, allCompanies: true });
    return { noReason, started, acting, second, third, fourth, adminTarget, ended, afterEnd, events };
  },

  // Scenario 15: a user registers (a weak password is refused), signs in, then five bad sign-ins
  // lock the account; they ask for a reset link.
  async lockout({ name, email, password, wrong }) {
    const weak = await attempt("mutation", "auth:registerUser", { name, email, password: "password1" });
    const registered = await m("auth:registerUser", { name, email, password });
    const session = (await m("auth:loginUser", { email, password })).sessionToken;
    const failures = [];
    for (let i = 0; i < 5; i++) {
      failures.push(await attempt("mutation", "auth:loginUser", { email, password: wrong }));
    }
    const rightPassword = await attempt("mutation", "auth:loginUser", { email, password });
    const resetRequest = await act("auth:requestPasswordReset", { email });
    return { weak, registered, session, failures, rightPassword, resetRequest };
  },

  // Scenario 15: the emailed link sets a new password (a weak one is refused) and ends sessions.
  async reset({ token, email, oldSession, oldPassword, newPassword }) {
    const weak = await attempt("mutation", "auth:resetPassword", { token, newPassword: "weak" });
    const reset = await m("auth:resetPassword", { token, newPassword });
    const oldSessionUser = await q("users:getCurrent", { sessionToken: oldSession });
    const oldPasswordLogin = await attempt("mutation", "auth:loginUser", { email, password: oldPassword });
    const login = await attempt("mutation", "auth:loginUser", { email, password: newPassword });
    const reused = await attempt("mutation", "auth:resetPassword", { token, newPassword: "Th1rd!Secret" });
    return { weak, reset, oldSessionUser, oldPasswordLogin, login, reused };
  },

  // Scenario 16: an existing user registers; the browser asks for GitHub sign-in URLs.
  async oauthStart({ existing, count }) {
    const registered = existing ? await m("auth:registerUser", existing) : null;
    const starts = [];
    for (let i = 0; i < count; i++) {
      starts.push(await q("auth:getGitHubOAuthUrl", {}));
    }
    return { registered, starts };
  },

  // Scenario 16: back from GitHub with codes; each sign-in creates or links a user.
  async oauthFinish({ logins }) {
    const out = [];
    for (const { code, state } of logins) {
      const login = await attempt("action", "auth:githubOAuthLogin", { code, state });
      const me = login.$error ? null : await q("users:getCurrent", { sessionToken: login.sessionToken });
      const replay = await attempt("action", "auth:githubOAuthLogin", { code, state });
      out.push({ login, me, replay });
    }
    return { logins: out };
  },
};

if (!steps[step]) {
  console.error(`unknown step ${step}; known: ${Object.keys(steps).join(", ")}`);
  process.exit(2);
}
const result = await steps[step](args);
const replacer = (_k, v) => (typeof v === "bigint" ? `${v}n` : v);
console.log(JSON.stringify(result, replacer));
