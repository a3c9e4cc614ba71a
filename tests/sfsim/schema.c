/*
 * schema: the emulated sObjects and their fields (standard fields per
 * salesforce-api.md section 8 plus custom __c fields). Read-only tables.
 *
 * Every object starts with the same seven system fields at fixed positions
 * (Id, IsDeleted, CreatedDate, CreatedById, LastModifiedDate,
 * LastModifiedById, SystemModstamp), so code can use the constants in the
 * object table without lookups.
 */
#include <string.h>
#include <strings.h>

#include "simint.h"

#define RO SIM_F_DEFAULTED
#define NIL_RO (SIM_F_NILLABLE | SIM_F_DEFAULTED)

#define SYS(lbl)                                                                 \
    {"Id", lbl " ID", SIM_T_ID, 18, 0, RO, NULL, NULL, NULL, NULL, NULL},        \
        {"IsDeleted", "Deleted", SIM_T_BOOLEAN, 0, 0, RO, NULL, NULL, NULL, NULL, \
         NULL},                                                                  \
        {"CreatedDate", "Created Date", SIM_T_DATETIME, 0, 0, RO, NULL, NULL,    \
         NULL, NULL, NULL},                                                      \
        {"CreatedById", "Created By ID", SIM_T_REFERENCE, 18, 0, RO, "User",     \
         NULL, "CreatedBy", NULL, NULL},                                         \
        {"LastModifiedDate", "Last Modified Date", SIM_T_DATETIME, 0, 0, RO,     \
         NULL, NULL, NULL, NULL, NULL},                                          \
        {"LastModifiedById", "Last Modified By ID", SIM_T_REFERENCE, 18, 0, RO,  \
         "User", NULL, "LastModifiedBy", NULL, NULL},                            \
        {"SystemModstamp", "System Modstamp", SIM_T_DATETIME, 0, 0, RO, NULL,    \
         NULL, NULL, NULL, NULL}

#define OWNER                                                                    \
    {"OwnerId", "Owner ID", SIM_T_REFERENCE, 18, 0,                              \
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_DEFAULTED, "User", NULL, "Owner", NULL, \
     NULL}
#define STR(n, l, len) {n, l, SIM_T_STRING, len, 0, SIM_W, NULL, NULL, NULL, NULL, NULL}
#define TXT(n, l, len) {n, l, SIM_T_TEXTAREA, len, 0, SIM_W, NULL, NULL, NULL, NULL, NULL}
#define TYP(n, l, t, len) {n, l, t, len, 0, SIM_W, NULL, NULL, NULL, NULL, NULL}
#define NUM(n, l, t, p, s) {n, l, t, p, s, SIM_W, NULL, NULL, NULL, NULL, NULL}
#define PICK(n, l, v) {n, l, SIM_T_PICKLIST, 255, 0, SIM_W, NULL, NULL, NULL, v, NULL}
#define REF(n, l, to, rel) {n, l, SIM_T_REFERENCE, 18, 0, SIM_W, to, NULL, rel, NULL, NULL}
#define ROF(n, l, t) {n, l, t, 0, 0, NIL_RO, NULL, NULL, NULL, NULL, NULL}
#define BOOLW(n, l) {n, l, SIM_T_BOOLEAN, 0, 0, SIM_F_CREATE | SIM_F_UPDATE | SIM_F_DEFAULTED, NULL, NULL, NULL, NULL, NULL}
#define PLATFORM_ID                                                              \
    {"Platform_Id__c", "Platform Id", SIM_T_STRING, 64, 0,                       \
     SIM_W | SIM_F_EXTID | SIM_F_UNIQUE | SIM_F_CUSTOM, NULL, NULL, NULL, NULL,  \
     NULL}
#define LEGACY_ID                                                                \
    {"Legacy_Id__c", "Legacy Id", SIM_T_STRING, 64, 0,                           \
     SIM_W | SIM_F_EXTID | SIM_F_CUSTOM, NULL, NULL, NULL, NULL, NULL}
#define ADDR(p, P)                                                               \
    TXT(p "Street", P " Street", 255), STR(p "City", P " City", 40),             \
        STR(p "State", P " State/Province", 80),                                 \
        STR(p "PostalCode", P " Zip/Postal Code", 20),                           \
        STR(p "Country", P " Country", 80)

static const char *const acct_types[] = {"Prospect", "Customer - Direct",
                                         "Customer - Channel",
                                         "Channel Partner / Reseller",
                                         "Installation Partner",
                                         "Technology Partner", "Other", NULL};
static const char *const industries[] = {
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals",
    "Communications", "Construction", "Consulting", "Education", "Electronics",
    "Energy", "Engineering", "Entertainment", "Environmental", "Finance",
    "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance",
    "Machinery", "Manufacturing", "Media", "Not For Profit", "Recreation",
    "Retail", "Shipping", "Technology", "Telecommunications", "Transportation",
    "Utilities", "Other", NULL};
static const char *const sources[] = {"Web", "Phone Inquiry", "Partner Referral",
                                      "Purchased List", "Other", NULL};
static const char *const tiers[] = {"Gold", "Silver", "Bronze", NULL};
static const char *const stages[] = {"Prospecting", "Qualification",
                                     "Needs Analysis", "Value Proposition",
                                     "Id. Decision Makers", "Perception Analysis",
                                     "Proposal/Price Quote", "Negotiation/Review",
                                     "Closed Won", "Closed Lost", NULL};
static const char *const forecasts[] = {"Omitted", "Pipeline", "Best Case",
                                        "Commit", "Closed", NULL};
static const char *const opp_types[] = {"Existing Customer - Upgrade",
                                        "Existing Customer - Replacement",
                                        "Existing Customer - Downgrade",
                                        "New Customer", NULL};
static const char *const sectors[] = {"Public", "Private", "Nonprofit", NULL};
static const char *const itypes[] = {"Conference", "Email", "In Person",
                                     "Phone Call", NULL};
static const char *const tstatus[] = {"Not Started", "In Progress", "Completed",
                                      "Waiting on someone else", "Deferred", NULL};
static const char *const prios[] = {"High", "Normal", "Low", NULL};
static const char *const tsub[] = {"Task", "Email", "Call", NULL};
static const char *const calltypes[] = {"Internal", "Inbound", "Outbound", NULL};
static const char *const showas[] = {"Busy", "OutOfOffice", "Free", NULL};
static const char *const att_types[] = {"External", "Internal", NULL};
static const char *const att_resp[] = {"Accepted", "Declined", "Awaiting Response",
                                       NULL};

static const struct sim_field account_f[] = {
    SYS("Account"),
    OWNER,
    {"Name", "Account Name", SIM_T_STRING, 255, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED | SIM_F_NAME, NULL, NULL, NULL,
     NULL, NULL},
    PICK("Type", "Account Type", acct_types),
    PICK("Industry", "Industry", industries),
    REF("ParentId", "Parent Account ID", "Account", "Parent"),
    TYP("Phone", "Account Phone", SIM_T_PHONE, 40),
    TYP("Website", "Website", SIM_T_URL, 255),
    ADDR("Billing", "Billing"),
    ADDR("Shipping", "Shipping"),
    NUM("AnnualRevenue", "Annual Revenue", SIM_T_CURRENCY, 18, 0),
    NUM("NumberOfEmployees", "Employees", SIM_T_INT, 8, 0),
    TXT("Description", "Account Description", 32000),
    PICK("AccountSource", "Account Source", sources),
    ROF("LastActivityDate", "Last Activity", SIM_T_DATE),
    PLATFORM_ID,
    LEGACY_ID,
    {"Tier__c", "Tier", SIM_T_PICKLIST, 255, 0, SIM_W | SIM_F_CUSTOM, NULL, NULL,
     NULL, tiers, NULL},
    {"Open_Pipeline__c", "Open Pipeline", SIM_T_CURRENCY, 18, 2,
     NIL_RO | SIM_F_CALC | SIM_F_CUSTOM, NULL, NULL, NULL, NULL,
     "SUM(Opportunity.Amount) WHERE IsClosed = false"},
};

static const struct sim_field contact_f[] = {
    SYS("Contact"),
    OWNER,
    REF("AccountId", "Account ID", "Account", "Account"),
    STR("FirstName", "First Name", 40),
    {"LastName", "Last Name", SIM_T_STRING, 80, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"Name", "Full Name", SIM_T_STRING, 121, 0, SIM_F_DEFAULTED | SIM_F_NAME, NULL,
     NULL, NULL, NULL, NULL},
    TYP("Email", "Email", SIM_T_EMAIL, 80),
    TYP("Phone", "Business Phone", SIM_T_PHONE, 40),
    TYP("MobilePhone", "Mobile Phone", SIM_T_PHONE, 40),
    STR("Title", "Title", 128),
    STR("Department", "Department", 80),
    ADDR("Mailing", "Mailing"),
    REF("ReportsToId", "Reports To ID", "Contact", "ReportsTo"),
    PICK("LeadSource", "Lead Source", sources),
    TYP("Birthdate", "Birthdate", SIM_T_DATE, 0),
    TXT("Description", "Contact Description", 32000),
    ROF("LastActivityDate", "Last Activity", SIM_T_DATE),
    PLATFORM_ID,
    LEGACY_ID,
    {"LinkedIn__c", "LinkedIn", SIM_T_URL, 255, 0, SIM_W | SIM_F_CUSTOM, NULL,
     NULL, NULL, NULL, NULL},
};

static const struct sim_field opp_f[] = {
    SYS("Opportunity"),
    OWNER,
    REF("AccountId", "Account ID", "Account", "Account"),
    {"Name", "Name", SIM_T_STRING, 120, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED | SIM_F_NAME, NULL, NULL, NULL,
     NULL, NULL},
    NUM("Amount", "Amount", SIM_T_CURRENCY, 18, 2),
    {"CloseDate", "Close Date", SIM_T_DATE, 0, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"StageName", "Stage", SIM_T_PICKLIST, 255, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED, NULL, NULL, NULL, stages, NULL},
    NUM("Probability", "Probability (%)", SIM_T_PERCENT, 3, 0),
    {"ForecastCategory", "Forecast Category", SIM_T_PICKLIST, 40, 0, RO, NULL,
     NULL, NULL, forecasts, NULL},
    {"ForecastCategoryName", "Forecast Category Name", SIM_T_PICKLIST, 255, 0,
     SIM_W | SIM_F_DEFAULTED, NULL, NULL, NULL, forecasts, NULL},
    {"IsClosed", "Closed", SIM_T_BOOLEAN, 0, 0, RO, NULL, NULL, NULL, NULL, NULL},
    {"IsWon", "Won", SIM_T_BOOLEAN, 0, 0, RO, NULL, NULL, NULL, NULL, NULL},
    PICK("Type", "Opportunity Type", opp_types),
    PICK("LeadSource", "Lead Source", sources),
    STR("NextStep", "Next Step", 255),
    REF("ContactId", "Contact ID", "Contact", "Contact"),
    TXT("Description", "Description", 32000),
    ROF("FiscalYear", "Fiscal Year", SIM_T_INT),
    ROF("FiscalQuarter", "Fiscal Quarter", SIM_T_INT),
    {"HasOpportunityLineItem", "Has Line Item", SIM_T_BOOLEAN, 0, 0, RO, NULL,
     NULL, NULL, NULL, NULL},
    ROF("LastActivityDate", "Last Activity", SIM_T_DATE),
    PLATFORM_ID,
    {"Expected_Revenue__c", "Expected Revenue", SIM_T_CURRENCY, 18, 2,
     NIL_RO | SIM_F_CALC | SIM_F_CUSTOM, NULL, NULL, NULL, NULL,
     "Amount * Probability / 100"},
    {"Sector__c", "Sector", SIM_T_PICKLIST, 255, 0, SIM_W | SIM_F_CUSTOM, NULL,
     NULL, NULL, sectors, NULL},
};

static const struct sim_field inter_f[] = {
    SYS("Interaction"),
    OWNER,
    {"Name", "Interaction Name", SIM_T_STRING, 255, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED | SIM_F_NAME, NULL, NULL, NULL,
     NULL, NULL},
    REF("AccountId", "Account ID", "Account", "Account"),
    TYP("StartTime", "Start Time", SIM_T_DATETIME, 0),
    TYP("EndTime", "End Time", SIM_T_DATETIME, 0),
    PICK("InteractionType", "Interaction Type", itypes),
    TXT("Description", "Description", 32000),
    REF("RelatedRecordId", "Related Record ID", "Opportunity", "RelatedRecord"),
    {"AssociatedRecordId", "Associated Record ID", SIM_T_REFERENCE, 18, 0, SIM_W,
     "Account", "Opportunity", "AssociatedRecord", NULL, NULL},
    STR("ReferenceIdentifier", "Reference Identifier", 255),
    TYP("LastSyncedDateTime", "Last Synced Date Time", SIM_T_DATETIME, 0),
    PLATFORM_ID,
};

/* FSC InteractionAttendee: a child of Interaction (no OwnerId of its own) */
static const struct sim_field attendee_f[] = {
    SYS("Interaction Attendee"),
    {"Name", "Interaction Attendee Name", SIM_T_STRING, 255, 0, SIM_W | SIM_F_NAME,
     NULL, NULL, NULL, NULL, NULL},
    {"InteractionId", "Interaction ID", SIM_T_REFERENCE, 18, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED, "Interaction", NULL,
     "Interaction", NULL, NULL},
    REF("ContactId", "Contact ID", "Contact", "Contact"),
    REF("UserId", "User ID", "User", "User"),
    REF("EventId", "Event ID", "Event", "Event"),
    TYP("EmailAddress", "Email Address", SIM_T_EMAIL, 80),
    PICK("AttendeeType", "Attendee Type", att_types),
    PICK("AttendeeResponse", "Attendee Response", att_resp),
    BOOLW("IsOrganizer", "Is Organizer"),
    TYP("LastSyncedDateTime", "Last Synced Date Time", SIM_T_DATETIME, 0),
    PLATFORM_ID,
};

static const struct sim_field task_f[] = {
    SYS("Activity"),
    OWNER,
    REF("WhoId", "Name ID", "Contact", "Who"),
    {"WhatId", "Related To ID", SIM_T_REFERENCE, 18, 0, SIM_W, "Account",
     "Opportunity", "What", NULL, NULL},
    {"AccountId", "Account ID", SIM_T_REFERENCE, 18, 0, NIL_RO, "Account", NULL,
     "Account", NULL, NULL},
    STR("Subject", "Subject", 255),
    TYP("ActivityDate", "Due Date Only", SIM_T_DATE, 0),
    {"Status", "Status", SIM_T_PICKLIST, 255, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_DEFAULTED, NULL, NULL, NULL, tstatus,
     NULL},
    {"Priority", "Priority", SIM_T_PICKLIST, 255, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_DEFAULTED, NULL, NULL, NULL, prios, NULL},
    {"IsHighPriority", "High Priority", SIM_T_BOOLEAN, 0, 0, RO, NULL, NULL, NULL,
     NULL, NULL},
    {"IsClosed", "Closed", SIM_T_BOOLEAN, 0, 0, RO, NULL, NULL, NULL, NULL, NULL},
    TXT("Description", "Description", 32000),
    PICK("TaskSubtype", "Task Subtype", tsub),
    NUM("CallDurationInSeconds", "Call Duration", SIM_T_INT, 8, 0),
    PICK("CallType", "Call Type", calltypes),
    {"IsArchived", "Archived", SIM_T_BOOLEAN, 0, 0, RO, NULL, NULL, NULL, NULL,
     NULL},
    ROF("CompletedDateTime", "Completed Date/Time", SIM_T_DATETIME),
    PLATFORM_ID,
};

static const struct sim_field event_f[] = {
    SYS("Activity"),
    OWNER,
    REF("WhoId", "Name ID", "Contact", "Who"),
    {"WhatId", "Related To ID", SIM_T_REFERENCE, 18, 0, SIM_W, "Account",
     "Opportunity", "What", NULL, NULL},
    {"AccountId", "Account ID", SIM_T_REFERENCE, 18, 0, NIL_RO, "Account", NULL,
     "Account", NULL, NULL},
    STR("Subject", "Subject", 255),
    TYP("StartDateTime", "Start Date Time", SIM_T_DATETIME, 0),
    TYP("EndDateTime", "End Date Time", SIM_T_DATETIME, 0),
    NUM("DurationInMinutes", "Duration", SIM_T_INT, 8, 0),
    BOOLW("IsAllDayEvent", "All-Day Event"),
    TYP("ActivityDate", "Due Date Only", SIM_T_DATE, 0),
    TYP("ActivityDateTime", "Due Date Time", SIM_T_DATETIME, 0),
    STR("Location", "Location", 255),
    PICK("ShowAs", "Show Time As", showas),
    BOOLW("IsPrivate", "Private"),
    TXT("Description", "Description", 32000),
    {"IsArchived", "Archived", SIM_T_BOOLEAN, 0, 0, RO, NULL, NULL, NULL, NULL,
     NULL},
    PLATFORM_ID,
};

static const struct sim_field user_f[] = {
    SYS("User"),
    {"Username", "Username", SIM_T_STRING, 80, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED | SIM_F_UNIQUE, NULL, NULL, NULL,
     NULL, NULL},
    STR("FirstName", "First Name", 40),
    {"LastName", "Last Name", SIM_T_STRING, 80, 0,
     SIM_F_CREATE | SIM_F_UPDATE | SIM_F_REQUIRED, NULL, NULL, NULL, NULL, NULL},
    {"Name", "Full Name", SIM_T_STRING, 121, 0, SIM_F_DEFAULTED | SIM_F_NAME, NULL,
     NULL, NULL, NULL, NULL},
    TYP("Email", "Email", SIM_T_EMAIL, 128),
    BOOLW("IsActive", "Active"),
    STR("Alias", "Alias", 8),
    STR("Title", "Title", 80),
    PLATFORM_ID,
};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define SYSIDX 0, 1, 2, 3, 4, 5, 6

const struct sim_object sim_objects[SIM_NOBJ] = {
    {"Account", "Account", "Accounts", "001", account_f, N(account_f), SYSIDX, 8, 7},
    {"Contact", "Contact", "Contacts", "003", contact_f, N(contact_f), SYSIDX, 11, 7},
    {"Opportunity", "Opportunity", "Opportunities", "006", opp_f, N(opp_f), SYSIDX,
     9, 7},
    {"Interaction", "Interaction", "Interactions", "0rI", inter_f, N(inter_f),
     SYSIDX, 8, 7},
    {"Task", "Task", "Tasks", "00T", task_f, N(task_f), SYSIDX, -1, 7},
    {"Event", "Event", "Events", "00U", event_f, N(event_f), SYSIDX, -1, 7},
    {"User", "User", "Users", "005", user_f, N(user_f), SYSIDX, 10, -1},
    {"InteractionAttendee", "Interaction Attendee", "Interaction Attendees", "0ia",
     attendee_f, N(attendee_f), SYSIDX, 7, -1},
};

int sim_object_find(const char *name)
{
    for (int i = 0; i < SIM_NOBJ; i++)
        if (strcasecmp(sim_objects[i].name, name) == 0)
            return i;
    return -1;
}

int sim_object_by_prefix(const char *prefix3)
{
    for (int i = 0; i < SIM_NOBJ; i++)
        if (memcmp(sim_objects[i].prefix, prefix3, 3) == 0)
            return i;
    return -1;
}

int sim_field_find_n(const struct sim_object *o, const char *name, size_t n)
{
    for (int i = 0; i < o->nfields; i++)
        if (strlen(o->fields[i].name) == n && strncasecmp(o->fields[i].name, name, n) == 0)
            return i;
    return -1;
}

int sim_field_find(const struct sim_object *o, const char *name)
{
    return sim_field_find_n(o, name, strlen(name));
}

int sim_rel_find_n(const struct sim_object *o, const char *rel, size_t n)
{
    for (int i = 0; i < o->nfields; i++) {
        const char *r = o->fields[i].rel;
        if (r && strlen(r) == n && strncasecmp(r, rel, n) == 0)
            return i;
    }
    return -1;
}

enum sim_sclass sim_sclass(enum sim_ftype t)
{
    switch (t) {
    case SIM_T_CURRENCY:
    case SIM_T_DOUBLE:
    case SIM_T_PERCENT:
        return SIM_S_NUM;
    case SIM_T_INT:
        return SIM_S_INT;
    case SIM_T_BOOLEAN:
        return SIM_S_BOOL;
    case SIM_T_DATE:
        return SIM_S_DATE;
    case SIM_T_DATETIME:
        return SIM_S_DT;
    default:
        return SIM_S_STR;
    }
}

bool sim_is_text(enum sim_ftype t) { return sim_sclass(t) == SIM_S_STR; }

const char *sim_type_name(enum sim_ftype t)
{
    static const char *const names[] = {
        "id", "string", "reference", "picklist", "currency", "double", "percent",
        "date", "datetime", "boolean", "textarea", "email", "phone", "url", "int"};
    return names[t];
}
