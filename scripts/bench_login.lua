-- wrk script: a flood of password sign-ins for an unknown e-mail address:
-- the full Argon2 work (against the dummy hash, as for a wrong password),
-- without growing any account's lockout state.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"nobody@example.com","password":"wrong-password-flood"}'
