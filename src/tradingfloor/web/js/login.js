// The login screen: user name and password, then a TOTP code when the server asks for one
// (40110002), or TOTP enrolment when the account must have it (40110003): show the secret,
// confirm a code, then log in with the app's next code.

import * as api from "/web/js/api.js";
import { $, say } from "/web/js/dom.js";

export class LoginScreen {
  constructor({ onLoggedIn }) {
    this.onLoggedIn = onLoggedIn;
    this.view = $("#login-view");
    this.form = $("#login-form");
    this.enrol = $("#enrol-form");
    this.message = $("#login-message");
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    this.enrol.addEventListener("submit", (e) => {
      e.preventDefault();
      this.confirm();
    });
    $("#enrol-cancel").addEventListener("click", () => this.showLogin());
  }

  show(message = "", kind = "error") {
    this.view.hidden = false;
    this.showLogin();
    this.form.password.value = "";
    this.form.totp.value = "";
    $("#login-totp-row").hidden = true;
    say(this.message, message, message ? kind : "");
    (this.form.username.value ? this.form.password : this.form.username).focus();
  }

  hide() {
    this.view.hidden = true;
  }

  showLogin() {
    this.enrol.hidden = true;
    this.form.hidden = false;
  }

  async submit() {
    const username = this.form.username.value.trim();
    const password = this.form.password.value;
    const totp = this.form.totp.value.trim();
    const needCode = !$("#login-totp-row").hidden;
    if (!username || !password) {
      say(this.message, "Enter your user name and password.", "error");
      return;
    }
    if (needCode && !/^\d{6}$/.test(totp)) {
      say(this.message, "Enter the 6-digit code from your authenticator app.", "error");
      this.form.totp.focus();
      return;
    }
    const button = this.form.querySelector("button[type=submit]");
    button.disabled = true;
    say(this.message, "Logging in…");
    try {
      await api.login(username, password, needCode ? totp : undefined);
      say(this.message, "");
      this.onLoggedIn();
    } catch (exc) {
      this.failed(exc, username, password);
    } finally {
      button.disabled = false;
    }
  }

  failed(exc, username, password) {
    if (!(exc instanceof api.ApiError)) {
      say(this.message, `Cannot reach the server: ${exc}`, "error");
      return;
    }
    if (exc.code === api.ERR.TOTP_REQUIRED) {
      const first = $("#login-totp-row").hidden;
      $("#login-totp-row").hidden = false;
      this.form.totp.value = "";
      this.form.totp.focus();
      say(this.message, first ? "Enter the 6-digit code from your authenticator app." : exc.text, first ? "" : "error");
    } else if (exc.code === api.ERR.TOTP_ENROLMENT) {
      this.startEnrolment(username, password, exc.message);
    } else if (exc.status === 429) {
      say(this.message, `Too many attempts: try again in ${exc.retryAfter ?? 60} s. ${exc.text}`, "error");
    } else {
      say(this.message, exc.text, "error");
    }
  }

  async startEnrolment(username, password, why) {
    this.credentials = { username, password };
    try {
      const enrolment = await api.enrolTotp(username, password);
      $("#enrol-secret").textContent = enrolment.secret.replace(/(.{4})/g, "$1 ").trim();
      $("#enrol-uri").href = enrolment.otpauth_uri;
      $("#enrol-qr").src = enrolment.otpauth_qr_svg;
      this.form.hidden = true;
      this.enrol.hidden = false;
      this.enrol.code.value = "";
      say($("#enrol-message"), why);
      this.enrol.code.focus();
    } catch (exc) {
      say(this.message, exc.text ?? String(exc), "error");
    }
  }

  async confirm() {
    const code = this.enrol.code.value.trim();
    const message = $("#enrol-message");
    if (!/^\d{6}$/.test(code)) {
      say(message, "Enter the 6-digit code the app shows.", "error");
      return;
    }
    try {
      await api.confirmTotp(this.credentials.username, this.credentials.password, code);
      this.showLogin();
      $("#login-totp-row").hidden = false;
      this.form.totp.value = "";
      this.form.totp.focus();
      say(this.message, "Two-factor authentication is on. Log in with the app's next code.", "ok");
    } catch (exc) {
      say(message, exc.text ?? String(exc), "error");
    }
  }
}
