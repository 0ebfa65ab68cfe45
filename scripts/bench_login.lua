-- wrk script: a flood of password sign-ins (wrong password: full Argon2 work).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"owner@example.com","password":"wrong-password-flood"}'
