package app

// Application gathers the auth use cases for the inbound ports.
type Application struct {
	Register       RegisterHandler
	Login          LoginHandler
	Refresh        RefreshHandler
	Logout         LogoutHandler
	GetUser        GetUserHandler
	ListUsers      ListUsersHandler
	ChangePassword ChangePasswordHandler
	ForgotPassword *ForgotPasswordHandler
	ResetPassword  ResetPasswordHandler
}
